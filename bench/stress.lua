--[[
bench/stress.lua: the two sides of scripts/stress, on luv's loop.

  lua5.4 bench/stress.lua keygen
      prints "secret=HEX key=HEX": a fresh identity.
  lua5.4 bench/stress.lua attack PORT SECONDS IDLE M1 GARBAGE
      against 127.0.0.1:PORT for SECONDS: IDLE strangers that connect and
      never speak (reconnecting when the host closes them), M1 workers that
      each send a valid handshake message 1 from a fresh ephemeral key (made
      up front: the attacker does no crypto during the flood), wait for
      message 2 or the close and start over, and GARBAGE workers that send
      bytes that are no handshake and start over. Prints "ready" once the
      idle connections are up, then at the end one line of counters.
  lua5.4 bench/stress.lua attack PORT SECONDS IDLE M1 GARBAGE RATE KEEP SOURCES
      the same, and RATE new connections a second (open loop, whatever the
      host answers), each sending a 42-byte message 1 with 32 random bytes
      for its key (no crypto at all) and hanging up when message 2 comes,
      or with KEEP=1 keeping the socket until the host closes it. At most
      RATE_OPEN_MAX of them are open at once. SOURCES > 1: they come from
      127.0.0.2 .. 127.0.0.(SOURCES + 1) in turn (the trusted clients stay
      on 127.0.0.1), else from 127.0.0.1.
  PN_STRESS_KEPT=HEX PN_STRESS_FRESH=HEX lua5.4 bench/stress.lua client PORT SERVERKEY N
      two trusted identities: KEPT holds one link and calls `echo` one call
      after the other; FRESH makes N new connections one after the other
      (a new host each time, given 5 s each, 100 ms apart; a handshake the
      host cuts short is tried again within the 5 s, as `peernet-host call`
      does), and goes on until the kept link has made at least 2,000 calls.
      Prints one line:
      "connects_ok=X/N (in T tries, the kept link's included) calls=C p50_ms=.. max_ms=..".

Everything is bounded: counts are given, the attack ends after SECONDS and
the client after N connects. Only 127.0.0.1 is ever dialled.
]]

local script_dir = (arg and arg[0] or ""):match("^(.*)/") or "."
local build_dir = os.getenv("PN_BUILD_DIR") or (script_dir .. "/../build")
package.cpath = build_dir .. "/?.so;" .. package.cpath

local peernet = require "peernet"
peernet.handshake = require("peernet_wire").handshake -- the wire codecs are a module of their own
local uv = require "luv"

local IDLE_MAX, WORKERS_MAX, SECONDS_MAX, CONNECTS_MAX = 5000, 1000, 600, 10000
local M1_POOL = 256 -- distinct first messages, made before the flood starts
local RAMP_MS = 2000 -- the attack runs this long before the client is let in
local CONNECT_GAP_MS = 100 -- between the client's new connections: they span the attack
local CONNECT_TIMEOUT_MS = 5000
local RETRY_MAX_MS = 160 -- the pause between tries of a handshake cut short, as lua/peernet/cli/ops.lua
local CALLS_MIN = 2000 -- on the kept link, however quickly the connects are done
local RATE_MAX = 20000 -- connections a second for the open-loop flood
local RATE_OPEN_MAX = 3000 -- of its connections open at once (file descriptors)
local RATE_TICK_MS = 10

local function fail(msg)
  io.stderr:write("stress: ", tostring(msg), "\n")
  os.exit(1)
end

local function int(s, lo, hi, what)
  local v = math.tointeger(tonumber(s))
  if not v or v < lo or v > hi then fail(("%s must be an integer in %d..%d"):format(what, lo, hi)) end
  return v
end

local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end
local function unhex(s) return (s:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end

local mode = arg[1]

if mode == "keygen" then
  local kp = peernet.keys.generate()
  print("secret=" .. hex(kp:secret()) .. " key=" .. kp:public_hex())
  os.exit(0)
end

-- ---- attack ------------------------------------------------------------------

local function attack(port, seconds, nidle, nm1, ngarbage, rate, keep, sources)
  local c = { idle_reconnects = 0, m1_sent = 0, m2_got = 0, garbage_sent = 0, connect_errors = 0,
    rate_sent = 0, rate_m2 = 0, rate_skipped = 0 }
  local m1s = {}
  for i = 1, M1_POOL do
    local hs = assert(peernet.handshake.new { role = "initiator",
      static = peernet.keys.generate():secret(), verify = function() return true end })
    m1s[i] = string.pack(">s4", assert(hs:write()))
  end
  local garbage = {
    string.pack(">I4", 0xffffffff),                   -- over any frame cap
    string.pack(">s4", string.rep("\0", 38)),          -- message 1's size, no ETF header
    string.pack(">s4", "\x83\x6d\0\0\0\x20" .. string.rep("\1", 31)), -- one byte short
  }
  local stopping = false
  local open = 0

  -- One connection: on_connect(tcp) when up; on_end() once it is over.
  local function dial(on_connect, on_data, on_end, from)
    local tcp = uv.new_tcp()
    if from then assert(tcp:bind(from, 0)) end
    open = open + 1
    local ended = false
    local function finish()
      if ended then return end
      ended = true
      open = open - 1
      if not tcp:is_closing() then tcp:close() end
      on_end()
    end
    tcp:connect("127.0.0.1", port, function(err)
      if err then
        c.connect_errors = c.connect_errors + 1
        c.last_error = err
        return finish()
      end
      tcp:read_start(function(rerr, data)
        if rerr or not data then return finish() end
        if on_data then on_data(tcp, data, finish) end
      end)
      on_connect(tcp, finish)
    end)
  end

  local idle_up = 0
  local function idle_one()
    if stopping then return end
    dial(function() idle_up = idle_up + 1 end, nil, function()
      c.idle_reconnects = c.idle_reconnects + 1
      -- From the loop, not from inside the close: a storm must not recurse.
      local t = uv.new_timer()
      t:start(0, 0, function() t:close() idle_one() end)
    end)
  end
  local function m1_one()
    if stopping then return end
    dial(function(tcp)
      tcp:write(m1s[c.m1_sent % M1_POOL + 1])
      c.m1_sent = c.m1_sent + 1
    end, function(_, _, finish)
      c.m2_got = c.m2_got + 1
      finish()
    end, function()
      local t = uv.new_timer()
      t:start(0, 0, function() t:close() m1_one() end)
    end)
  end
  local function garbage_one()
    if stopping then return end
    dial(function(tcp)
      tcp:write(garbage[c.garbage_sent % #garbage + 1])
      c.garbage_sent = c.garbage_sent + 1
    end, nil, function()
      local t = uv.new_timer()
      t:start(0, 0, function() t:close() garbage_one() end)
    end)
  end

  -- Open loop: RATE a second whatever the host does, each a fresh random
  -- "key" (the host cannot tell it from a real one before its X25519 work).
  local rate_open = 0
  local raw_m1s = {}
  for i = 1, M1_POOL do
    local b = {}
    for j = 1, 32 do b[j] = string.char(math.random(0, 255)) end
    raw_m1s[i] = "\0\0\0\x26\x83\x6d\0\0\0\x20" .. table.concat(b)
  end
  local function rate_one()
    rate_open = rate_open + 1
    dial(function(tcp)
      tcp:write(raw_m1s[c.rate_sent % M1_POOL + 1])
      c.rate_sent = c.rate_sent + 1
    end, function(_, _, finish)
      c.rate_m2 = c.rate_m2 + 1
      if keep == 0 then finish() end
    end, function() rate_open = rate_open - 1 end,
      sources > 1 and ("127.0.0." .. (2 + c.rate_sent % sources)) or nil)
  end
  if rate > 0 then
    local due, t0 = 0, uv.now()
    local tick = uv.new_timer()
    tick:start(RATE_TICK_MS, RATE_TICK_MS, function()
      if stopping then return end
      local want = (uv.now() - t0) * rate // 1000
      while due < want do
        due = due + 1
        if rate_open < RATE_OPEN_MAX then rate_one() else c.rate_skipped = c.rate_skipped + 1 end
      end
    end)
  end

  for _ = 1, nidle do idle_one() end
  for _ = 1, nm1 do m1_one() end
  for _ = 1, ngarbage do garbage_one() end
  -- Ready once every idle stranger has been up and each flood has gone
  -- round a few times.
  local ready = uv.new_timer()
  local t_start = uv.now()
  ready:start(10, 10, function()
    if idle_up + c.idle_reconnects >= nidle and c.m1_sent >= 4 * nm1 and
        c.rate_sent >= rate // 2 and
        c.garbage_sent >= 4 * ngarbage and uv.now() - t_start >= RAMP_MS then
      ready:close()
      print("ready")
      io.stdout:flush()
    end
  end)
  local function stop_all()
    if stopping then return end
    stopping = true
    uv.walk(function(hd) if not hd:is_closing() then hd:close() end end)
  end
  local stop = uv.new_timer()
  stop:start(seconds * 1000, 0, stop_all)
  local sig = uv.new_signal() -- the driver stops it early once the client is done
  sig:start("sigint", stop_all)
  uv.run()
  print(("attack idle=%d idle_reconnects=%d m1_sent=%d m2_got=%d garbage_sent=%d connect_errors=%d%s%s")
    :format(nidle, c.idle_reconnects, c.m1_sent, c.m2_got, c.garbage_sent, c.connect_errors,
      rate > 0 and (" rate=%d/s%s rate_sent=%d rate_m2=%d rate_skipped=%d"):format(rate,
        keep == 1 and " (kept open)" or "", c.rate_sent, c.rate_m2, c.rate_skipped) or "",
      c.last_error and (" (" .. c.last_error .. ")") or ""))
end

-- ---- client --------------------------------------------------------------------

local function client(port, server_key, n)
  local kept_secret, fresh_secret = os.getenv("PN_STRESS_KEPT"), os.getenv("PN_STRESS_FRESH")
  if not kept_secret or not fresh_secret then fail("PN_STRESS_KEPT and PN_STRESS_FRESH must be set") end
  local addr = "127.0.0.1:" .. port
  local function new_host(secret)
    local h, e = peernet.host.new { secret = unhex(secret), listen = "",
      handshake_timeout = CONNECT_TIMEOUT_MS, trust = { server_key }, log = function() end }
    if not h then fail(e) end
    return h
  end

  -- As `peernet-host call` does (lua/peernet/cli/ops.lua): a handshake the
  -- host cut short is tried again, after 20 ms doubling to RETRY_MAX_MS,
  -- until finish is called (by the caller's deadline or the outcome).
  local tries = 0
  local function retrying_connect(h, over, finish)
    local pause = 20
    local function try()
      tries = tries + 1
      local ok, e = h:connect(server_key, addr, function(cok, cerr)
        if cok or over() then return finish(cok, cerr) end
        local s = tostring(cerr)
        if not (s:find("peer closed the connection", 1, true) or s:find("connection reset", 1, true)) then
          return finish(false, cerr)
        end
        local again = uv.new_timer()
        again:start(pause, 0, function() again:close() if not over() then try() end end)
        pause = math.min(pause * 2, RETRY_MAX_MS)
      end)
      if not ok then finish(false, e) end
    end
    try()
  end

  local kept = new_host(kept_secret)
  -- A few tries: this link is what the latencies are measured on, not what
  -- the connect figure counts; when it never connects (a host whose pool a
  -- flood holds) the line says so and there are no latencies.
  local kept_up, kept_err = false, nil
  for try = 1, 3 do
    local up
    local deadline = uv.new_timer()
    deadline:start(CONNECT_TIMEOUT_MS, 0, function() up = up or { false, "no answer within 5 s" } end)
    retrying_connect(kept, function() return up ~= nil end, function(ok, err) up = up or { ok, err } end)
    while not up do uv.run("once") end
    deadline:close()
    kept_up, kept_err = up[1], up[2]
    if kept_up then break end
    io.stderr:write("stress: kept link, try ", try, ": ", tostring(up[2]), "\n")
  end

  local lat, calling, done, failed, why = {}, kept_up, false, 0, nil
  local function call_next()
    if not calling then return end
    local t0 = uv.hrtime()
    local ok, e = kept:call(server_key, "echo", "x", function(cok, v)
      if cok then
        lat[#lat + 1] = (uv.hrtime() - t0) / 1e6
      elseif not done then -- (the call in flight when the client closes is not a failure)
        failed, why = failed + 1, v
      end
      call_next()
    end, { timeout = 10000 })
    if not ok then calling, failed, why = false, failed + 1, e end
  end
  call_next()

  local okc, i, reasons = 0, 0, {}
  local function connect_next()
    if i == n then
      local wait = uv.new_timer()
      wait:start(0, 10, function()
        if #lat < CALLS_MIN and calling then return end -- (no kept link: calling is false)
        wait:close()
        done = true
        calling = false
      end)
      return
    end
    i = i + 1
    local h = new_host(fresh_secret)
    local timer = uv.new_timer()
    local over = false
    local function finish(ok, err)
      if over then return end
      over = true
      if ok then
        okc = okc + 1
      else
        local k = tostring(err or "no answer within 5 s"):gsub("%d+", "N")
        reasons[k] = (reasons[k] or 0) + 1
      end
      timer:close()
      h:close()
      -- From the loop: the next host starts once this one has let go.
      local t = uv.new_timer()
      t:start(CONNECT_GAP_MS, 0, function() t:close() connect_next() end)
    end
    timer:start(CONNECT_TIMEOUT_MS, 0, function() finish(false) end)
    retrying_connect(h, function() return over end, finish)
  end
  connect_next()
  while not done do uv.run("once") end
  kept:close()
  uv.run("nowait")
  table.sort(lat)
  local function pct(p)
    if #lat == 0 then return 0 end
    return lat[math.max(1, math.ceil(#lat * p))]
  end
  local rs = {}
  for k, v in pairs(reasons) do rs[#rs + 1] = v .. "x " .. k end
  table.sort(rs)
  print(("connects_ok=%d/%d (in %d tries) calls=%d failed=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f%s%s")
    :format(okc, n, tries, #lat, failed, pct(0.5), pct(0.99), pct(1),
      why and (" (last call failure: " .. tostring(why) .. ")") or "",
      #rs > 0 and (" connect failures: " .. table.concat(rs, "; ")) or "")
      .. (kept_up and "" or (" (the kept link never connected: " .. tostring(kept_err) .. ")")))
end

if mode == "attack" then
  attack(int(arg[2], 1, 65535, "PORT"), int(arg[3], 1, SECONDS_MAX, "SECONDS"),
    int(arg[4], 0, IDLE_MAX, "IDLE"), int(arg[5], 0, WORKERS_MAX, "M1"),
    int(arg[6], 0, WORKERS_MAX, "GARBAGE"), int(arg[7] or "0", 0, RATE_MAX, "RATE"),
    int(arg[8] or "0", 0, 1, "KEEP"), int(arg[9] or "1", 1, 250, "SOURCES"))
elseif mode == "client" then
  if not (arg[3] or ""):match("^%x+$") or #arg[3] ~= 64 then fail("SERVERKEY must be 64 hex digits") end
  client(int(arg[2], 1, 65535, "PORT"), arg[3], int(arg[4], 1, CONNECTS_MAX, "N"))
else
  io.stderr:write("usage: lua5.4 bench/stress.lua keygen | attack PORT SECONDS IDLE M1 GARBAGE [RATE KEEP SOURCES]"
    .. " | client PORT SERVERKEY N\n")
  os.exit(2)
end
