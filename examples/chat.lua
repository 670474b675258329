-- Walkie-talkie chat between two terminals.
--
--   terminal 1:  peernet-host run examples/chat.lua PEER_KEY_OR_LABEL
--   terminal 2:  peernet-host run examples/chat.lua PEER_KEY_OR_LABEL [HOST:PORT]
--
-- Each side exposes `chat` and sends every line typed to the other side's
-- `chat`. Walkie-talkie delivery: a line typed while the peer is away is
-- not queued, you are told it was not delivered. End with Ctrl-D.
-- (Both data dirs must trust each other: peernet-host trust add KEY --addr HOST:PORT.)
local uv = require "luv"

local peer, addr = arg[1], arg[2]
if not peer then
  io.stderr:write("usage: peernet-host run examples/chat.lua PEER [HOST:PORT]\n")
  os.exit(2)
end

local function say(line)
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

peernet.expose("chat", function(from, text)
  say(("<%s> %s"):format(from:sub(1, 8), tostring(text)))
  return true
end, { authorize = function(from) return from == peernet.resolve(peer) end })

peernet.on("connected", function(key) say("* " .. key:sub(1, 8) .. " is here") end)
peernet.on("disconnected", function(key) say("* " .. key:sub(1, 8) .. " left") end)

-- Dial (the address from the command line or trust.list); if that fails
-- the other side may still dial us.
local ok, err = peernet.connect(peer, addr)
say(ok and "* connected" or ("* not connected yet: " .. tostring(err)))

-- stdin through luv, on the host's own loop: one send per line.
local stdin = uv.new_pipe(false)
stdin:open(0)
local pending = ""
stdin:read_start(function(err, data)
  if err or not data then -- Ctrl-D: stop serving, and the script ends
    stdin:close()
    peernet.revoke("chat")
    return
  end
  pending = pending .. data
  for line in pending:gmatch("([^\n]*)\n") do
    local ok, why = peernet.send(peer, "chat", line)
    if not ok then say("* not delivered (" .. why .. ")") end
  end
  pending = pending:match("[^\n]*$")
end)
