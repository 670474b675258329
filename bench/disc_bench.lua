--[[
bench/disc_bench.lua: the two sides of the discovery benchmark of
scripts/bench, each run in its own network namespace (ip netns exec).

  PN_BENCH_SECRET=HEX lua5.4 bench/disc_bench.lua server MODE CLIENTKEY
      listens on [::]:7000, trusts CLIENTKEY, exposes `echo`, prints "ready"
      and serves until killed.
  PN_BENCH_SECRET=HEX lua5.4 bench/disc_bench.lua client MODE SERVERKEY ADDR
      starts a host trusting SERVERKEY and prints "first_call_ms=X": the time
      from just before its host.new to the reply of its first call.

MODE direct: discovery off, the client dials ADDR (the baseline: the
address is known). MODE disc: discovery on for both, the client knows only
the key; its start-up announce makes the server dial it (ADDR unused).
]]
local script_dir = (arg and arg[0] or ""):match("^(.*)/") or "."
local build_dir = os.getenv("PN_BUILD_DIR") or (script_dir .. "/../build")
package.cpath = build_dir .. "/?.so;" .. package.cpath
local peernet = require "peernet"
local uv = require "luv"

local function fail(msg)
  io.stderr:write("disc_bench: ", tostring(msg), "\n")
  os.exit(1)
end

local function unhex(s) return (s:gsub("..", function(b) return string.char(tonumber(b, 16)) end)) end

local role, mode, peer, addr = arg[1], arg[2], arg[3], arg[4]
if not (role == "server" or role == "client") or not (mode == "direct" or mode == "disc")
  or not peer or (role == "client" and mode == "direct" and not addr) then
  io.stderr:write("usage: disc_bench.lua server|client direct|disc PEERKEY [ADDR]\n")
  os.exit(2)
end
local secret = unhex(os.getenv("PN_BENCH_SECRET") or fail("PN_BENCH_SECRET is not set"))
local disc = mode == "disc"

if role == "server" then
  local h = assert(peernet.host.new { secret = secret, listen = "[::]:7000", discovery = disc,
    trust = { peer } })
  h:expose("echo", function(_, x) return x end)
  io.stdout:write("ready\n")
  io.stdout:flush()
  uv.run()
  return
end

local t0 = uv.hrtime()
local h = assert(peernet.host.new { secret = secret, listen = "[::]:7000", discovery = disc,
  trust = { peer } })
local done
local function call()
  assert(h:call(peer, "echo", "x", function(ok, v)
    if not ok then fail("call failed: " .. tostring(v)) end
    done = uv.hrtime()
    uv.stop()
  end))
end
h:on("connected", function(key) if key == peer then call() end end)
if not disc then h:connect(peer, addr, function(ok, err) if not ok then fail(err) end end) end
local guard = uv.new_timer()
guard:start(20000, 0, function() fail("no call within 20 s") end)
uv.run()
io.stdout:write(string.format("first_call_ms=%.2f\n", (done - t0) / 1e6))
io.stdout:flush()
os.exit(0)
