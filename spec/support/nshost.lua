-- One peernet host in its own process, for specs that put hosts in network
-- namespaces (spec/net/netns_spec.lua):
--
--   PN_SECRET_HEX=... ip netns exec NS lua5.4 spec/support/nshost.lua [name=value ...]
--
-- name=value pairs are host.new settings (numbers and true/false are
-- converted; listen defaults to "[::]:7000"). The host exposes `echo`.
-- It prints lines on stdout:
--   ready port=N key=HEX
--   event connected|disconnected|discovered KEY
--   call ok VALUE | call fail ERR
--   peer STATUS ADDR            (or: peer none)
-- and reads commands on stdin, one per line:
--   trust KEY [ADDR] | call KEY | peer KEY | stats | netchange | quit
-- (stats prints: stats network_changes=N probes_failed=N announces_sent=N)
-- PN_BUILD_DIR (set by ctest) says where peernet.so is.
local build = os.getenv("PN_BUILD_DIR") or "build"
package.cpath = build .. "/?.so;" .. package.cpath
local peernet = require "peernet"
local uv = require "luv"

local function out(s)
  io.stdout:write(s, "\n")
  io.stdout:flush()
end

local function unhex(s) return (s:gsub("..", function(b) return string.char(tonumber(b, 16)) end)) end

local secret = assert(os.getenv("PN_SECRET_HEX"), "PN_SECRET_HEX is required")
local cfg = { secret = unhex(secret), listen = "[::]:7000" }
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  assert(k, "bad argument " .. a)
  if v == "true" then v = true elseif v == "false" then v = false
  elseif tonumber(v) then v = tonumber(v) end
  cfg[k] = v
end
cfg.log = function(level, msg) io.stderr:write(level, " ", msg, "\n") end
local h = assert(peernet.host.new(cfg))
h:expose("echo", function(_, x) return x end)
for _, ev in ipairs { "connected", "disconnected", "discovered" } do
  h:on(ev, function(key) out("event " .. ev .. " " .. key) end)
end
out("ready port=" .. h:port() .. " key=" .. h:key())

local commands = {
  trust = function(key, addr) assert(h:trust(key, addr)) end,
  call = function(key)
    local ok, err = h:call(key, "echo", "pong", function(ok2, v)
      out(ok2 and ("call ok " .. tostring(v)) or ("call fail " .. tostring(v)))
    end, { timeout = 2000 })
    if not ok then out("call fail " .. tostring(err)) end
  end,
  peer = function(key)
    local p = h:peer(key)
    out(p and ("peer " .. p.status .. " " .. p.addr) or "peer none")
  end,
  netchange = function() h:network_changed() end,
  stats = function()
    local st = h:stats()
    out(string.format("stats network_changes=%d probes_failed=%d announces_sent=%d",
      st.network_changes, st.probes_failed, st.announces_sent))
  end,
}

local stdin = uv.new_pipe(false)
-- the loop ends by itself once the host's handles and stdin are closed
commands.quit = function()
  h:close()
  stdin:close()
end
stdin:open(0)
local pending = ""
stdin:read_start(function(err, data)
  if err or not data then -- the spec went away
    commands.quit()
    return
  end
  pending = pending .. data
  while true do
    local line, rest = pending:match("^([^\n]*)\n(.*)$")
    if not line then break end
    pending = rest
    local words = {}
    for w in line:gmatch("%S+") do words[#words + 1] = w end
    local f = commands[words[1]]
    if f then f(table.unpack(words, 2)) else out("unknown command " .. tostring(words[1])) end
    if words[1] == "quit" then return end
  end
end)
uv.run()
