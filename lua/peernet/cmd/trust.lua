-- trust add/rm/ls: the trust list of the data dir. When a host runs on the
-- data dir, add and rm go through its control socket: it edits the list
-- and trusts or untrusts the key at once, so the next command finds it so.
local peernet = require "peernet"
local control = require "peernet.control"
local format = require "peernet.format"
local datadir = require "peernet.cli.datadir"
local output = require "peernet.cli.output"
local task = require "peernet.cli.task"
local trustedit = require "peernet.cli.trustedit"

local EXIT, out, fail = output.EXIT, output.out, output.fail

local M = {}

local CONTROL_MS = 15000 -- the running host may wait for the trust list's writer lock

local function entry_text(en)
  return ("%s  %s  %s  %s"):format(en.key, en.label or "-", en.addr or "-", en.added or "-")
end

-- One request to the running host: its answer, or nil when none runs, or
-- nil, message when the exchange failed.
local function ask_host(p, req)
  local ok, answer, e, kind = task.run(function()
    return task.await(function(k) control.request(p.control, req, CONTROL_MS, k) end)
  end)
  if not ok then return nil, tostring(answer) end
  if answer then return answer end
  if kind == "no_host" then return nil end
  return nil, "control socket: " .. tostring(e)
end

-- The full key of the stranger a prefix names (the running host knows the
-- keys it discovered or refused), shown with its fingerprint and address
-- but never trusted by the prefix: announces are unauthenticated, so the
-- one key a prefix matches may be a forgery that pushed the real one out
-- of the host's table. Returns the message for the operator.
local function look_up(p, text)
  if control.probe(p.control) ~= "alive" then
    return "not a key: " .. text .. " (a prefix names a discovered or refused key, "
      .. "which only a running host knows: start peernet-host serve)"
  end
  local answer, e = ask_host(p, { op = "peers" })
  if not answer then return e or "no host answered" end
  local peer, me = trustedit.match(answer.peers or {}, text)
  if not peer then return me end
  return ("%s is %s, fingerprint %s%s. Compare the fingerprint with `peernet-host id` on that device,"
    .. " then trust the full key: peernet-host trust add %s"):format(text, peer.key,
    peernet.keys.fingerprint(peernet.keys.parse(peer.key)),
    peer.addr and (", seen at " .. peer.addr) or "", peer.key)
end

-- One trust list edit: through the running host when there is one (it
-- edits the file and applies it before it answers, so the next command
-- sees the change), else on the file itself (in_file).
local function edit(o, p, request, in_file, verb)
  local answer, ae = ask_host(p, request)
  local en, kind, msg
  if answer then
    if answer.ok then en = answer.entry else kind, msg = answer.kind, answer.message end
  elseif ae then
    return fail("failure", ae)
  else
    en, kind, msg = in_file()
  end
  if not en then return fail(kind == "usage" and "usage" or "failure", msg) end
  output.json_or(o, format.shaped("trust", en), verb .. entry_text(en))
  return EXIT.ok
end

local sub = {}

function sub.add(o, p)
  if #o.pos ~= 2 then return fail("usage", "usage: peernet-host trust add KEY|PREFIX [--label L] [--addr HOST:PORT]") end
  local key = o.pos[2]
  if not peernet.keys.parse(key) then
    if not trustedit.is_prefix(key) then return fail("usage", "not a key: " .. key) end
    return fail("usage", look_up(p, key))
  end
  return edit(o, p, { op = "trust", action = "add", key = key, label = o.label, addr = o.addr },
    function() return trustedit.add(p, key, { label = o.label, addr = o.addr }) end, "trusted ")
end

function sub.rm(o, p)
  if #o.pos ~= 2 then return fail("usage", "usage: peernet-host trust rm KEY|LABEL") end
  return edit(o, p, { op = "trust", action = "rm", peer = o.pos[2] },
    function() return trustedit.rm(p, o.pos[2]) end, "removed ")
end

function sub.ls(o, p)
  if #o.pos ~= 1 then return fail("usage", "usage: peernet-host trust ls") end
  local store, e = datadir.open_trust(p)
  if not store then return fail("failure", e) end
  local list = store:list()
  store:close()
  if o.json then
    local shaped = {}
    for i, en in ipairs(list) do shaped[i] = format.shaped("trust", en) end
    out(format.json(shaped))
  elseif #list == 0 then
    out("(the trust list is empty: peernet-host trust add KEY)")
  else
    local rows = {}
    for i, en in ipairs(list) do rows[i] = { en.key, en.label or "-", en.addr or "-", en.added or "-" } end
    out(format.columns({ "KEY", "LABEL", "ADDR", "ADDED" }, rows))
  end
  return EXIT.ok
end

M.trust = {
  run = function(o, p)
    local run = sub[o.pos[1]]
    if not run then return fail("usage", "trust needs add, rm or ls (peernet-host trust --help)") end
    return run(o, p)
  end,
}

return M
