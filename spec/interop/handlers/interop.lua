-- Handler script the interop specs serve to a real PeerNet (Elixir) node.
peernet.expose("echo", function(from, args) return args end)

-- What the handler saw: Lua's type of args and its text, so a spec can tell
-- an exact big integer from a float that only looks close.
peernet.expose("kind", function(from, args)
  return peernet.tuple(math.type(args) or type(args), tostring(args))
end)

peernet.expose("raise", function() error("raised on purpose") end)
peernet.expose("fail", function() return nil, "no such room" end)
peernet.expose("fail_atom", function() return nil, peernet.atom("badarg") end)
peernet.expose("guarded", function() return "ran" end, { authorize = function() return false end })
peernet.expose("spin", function()
  local n = 0
  while true do n = n + 1 end
end)

-- An atom no Elixir code mentions: the reference cannot decode the reply.
peernet.expose("unseen_atom", function() return peernet.atom("pn_interop_unseen_7f3a") end)

-- Sends the Elixir side makes land here; "notes" hands them back.
local notes = {}
peernet.expose("note", function(from, args) notes[#notes + 1] = args end)
peernet.expose("notes", function() return notes end)

-- beam_admin for the peer labelled "phone" only (see admin/Device.lua).
peernet.admin.expose { authorize = function(from) return from == peernet.resolve("phone") end }
