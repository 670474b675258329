--[[
bench/host_bench.lua: the "subject" side of scripts/bench. Two peernet hosts
on luv's default loop, one exposing `echo`, the other calling it; prints the
same result line as build/tcp_pingpong so the two can be compared.

  lua5.4 bench/host_bench.lua keygen
      prints "secret=HEX key=HEX": a fresh identity for one side.
  PN_BENCH_SECRET=HEX lua5.4 bench/host_bench.lua server --peer CLIENTKEY [--sandboxed]
      listens on 127.0.0.1:0, trusts CLIENTKEY, prints "port=NNNN key=HEX",
      serves `echo` until the client calls `bye` (the driver kills it otherwise).
  PN_BENCH_SECRET=HEX lua5.4 bench/host_bench.lua client HOST PORT MODE N SIZE SERVERKEY
      trusts SERVERKEY, connects, does 100 untimed warm-up calls, then
      MODE seq:  N calls one after the other (next call from the reply callback)
      MODE pipe: keeps 100 calls in flight until N replies are back
      and prints e.g. "seq n=5000 size=64 seconds=1.2 rtt_us=240.0 per_s=4166".

Trust is mutual, so scripts/bench makes both identities up front (keygen) and
gives each side its own secret and the other's public key. The secret goes
through the environment, not argv, so it stays out of ps and /proc/PID/cmdline.
The args of each call are one Lua string (an Erlang binary) of SIZE bytes.

Exit codes: 0 ok, 1 runtime failure (message on stderr), 2 usage.
]]

local script_dir = (arg and arg[0] or ""):match("^(.*)/") or "."
local build_dir = os.getenv("PN_BUILD_DIR") or (script_dir .. "/../build")
package.cpath = build_dir .. "/?.so;" .. package.cpath

local peernet = require "peernet"
local uv = require "luv"

local WINDOW = 100
local WARMUP = 100
local CALL_TIMEOUT_MS = 30000 -- a lost reply fails the run instead of hanging it

local function usage()
    io.stderr:write([[
usage: lua5.4 bench/host_bench.lua keygen
       PN_BENCH_SECRET=HEX lua5.4 bench/host_bench.lua server --peer CLIENTKEY [--sandboxed]
       PN_BENCH_SECRET=HEX lua5.4 bench/host_bench.lua client HOST PORT seq|pipe N SIZE SERVERKEY
]])
    os.exit(2)
end

local function fail(msg)
    io.stderr:write("host_bench: ", tostring(msg), "\n")
    io.stderr:flush()
    os.exit(1)
end

local function check_int(s, lo, hi, what)
    local v = math.tointeger(tonumber(s))
    if not v or v < lo or v > hi then
        io.stderr:write(("host_bench: %s must be an integer in %d..%d, got %q\n")
            :format(what, lo, hi, tostring(s)))
        os.exit(2)
    end
    return v
end

local function check_key(s, what)
    if type(s) ~= "string" or not s:match("^%x+$") or #s ~= 64 then
        io.stderr:write(("host_bench: %s must be 64 hex digits, got %q\n"):format(what, tostring(s)))
        os.exit(2)
    end
    return s:lower()
end

local function own_keypair()
    local secret_hex = os.getenv("PN_BENCH_SECRET")
    if not secret_hex then fail("PN_BENCH_SECRET (64 hex digits) is not set") end
    local raw, err = peernet.keys.parse(secret_hex)
    if not raw then fail("PN_BENCH_SECRET: " .. tostring(err)) end
    local kp, kerr = peernet.keys.from_secret(raw)
    if not kp then fail("PN_BENCH_SECRET: " .. tostring(kerr)) end
    return kp
end

local function new_host(kp, peer_key)
    if not peernet.host then fail("peernet.host is missing from " .. build_dir .. "/peernet.so") end
    local ok, host, err = pcall(peernet.host.new, {
        secret = kp:secret(),
        listen = "127.0.0.1:0",
        trust = { peer_key },
    })
    if not ok then fail(host) end
    if not host then fail(err) end
    return host
end

local function keygen()
    local kp = peernet.keys.generate()
    print(("secret=%s key=%s"):format(peernet.keys.hex(kp:secret()), kp:public_hex()))
end

-- sandboxed: `echo` is a handler script in its own sandboxed state (the
-- script runtime: a coroutine per call, the CPU hook, the memory cap)
-- instead of a function of this state.
local function server(peer_key, sandboxed)
    local host = new_host(own_keypair(), peer_key)
    local rt, dir
    if sandboxed then
        dir = os.tmpname()
        os.remove(dir)
        assert(os.execute("mkdir -m 700 " .. dir))
        local f = assert(io.open(dir .. "/echo.lua", "w"))
        f:write('peernet.expose("echo", function(_, args) return args end)\n')
        f:close()
        rt = peernet.runtime.new(host, {})
        local report = rt:load_dir(dir)
        if not (report[1] and report[1].ok) then fail("echo.lua did not load") end
    else
        host:expose("echo", function(_, args) return args end)
    end
    host:expose("bye", function()
        -- Reply first, then leave: the timer lets the reply reach the socket.
        local t = uv.new_timer()
        t:start(50, 0, function()
            t:close()
            if rt then
                rt:close()
                os.remove(dir .. "/echo.lua")
                os.remove(dir)
            end
            host:close()
            uv.stop()
        end)
        return "bye"
    end)
    io.stdout:write(("port=%d key=%s\n"):format(host:port(), host:key()))
    io.stdout:flush()
    uv.run()
end

local function client(addr, port, mode, n, size, peer_key)
    local host = new_host(own_keypair(), peer_key)
    local payload = string.rep("\x07\x8a\x0d\x90", size // 4 + 1):sub(1, size)
    local opts = { timeout = CALL_TIMEOUT_MS }

    local function check_reply(ok, value)
        if not ok then fail("echo call failed: " .. tostring(value)) end
        if value ~= payload then
            fail(("echo returned something else (a %s of %s bytes)")
                :format(type(value), type(value) == "string" and #value or "?"))
        end
    end

    local function finish(t0)
        local secs = (uv.hrtime() - t0) / 1e9
        if secs <= 0 then secs = 1e-9 end
        local per_s = n / secs
        if mode == "seq" then
            io.stdout:write(("seq n=%d size=%d seconds=%.3f rtt_us=%.1f per_s=%.0f\n")
                :format(n, size, secs, secs * 1e6 / n, per_s))
        else
            io.stdout:write(("pipe n=%d size=%d window=%d seconds=%.3f per_s=%.0f mib_s=%.1f\n")
                :format(n, size, WINDOW, secs, per_s, per_s * size / (1024 * 1024)))
        end
        io.stdout:flush()
        -- The server exits on bye; its answer does not matter to the figures.
        host:call(peer_key, "bye", "", function()
            host:close()
            uv.stop()
        end, { timeout = 2000 })
    end

    local function seq(count, done)
        local i = 0
        local function one()
            host:call(peer_key, "echo", payload, function(ok, value)
                check_reply(ok, value)
                i = i + 1
                if i == count then done() else one() end
            end, opts)
        end
        one()
    end

    local function pipe(count, done)
        local sent, recvd = 0, 0
        local pump
        local function on_reply(ok, value)
            check_reply(ok, value)
            recvd = recvd + 1
            if recvd == count then done() else pump() end
        end
        function pump()
            while sent < count and sent - recvd < WINDOW do
                sent = sent + 1
                host:call(peer_key, "echo", payload, on_reply, opts)
            end
        end
        pump()
    end

    host:connect(peer_key, ("%s:%d"):format(addr, port), function(ok, err)
        if not ok then fail("connect: " .. tostring(err)) end
        seq(WARMUP, function()
            local t0 = uv.hrtime()
            local run = mode == "seq" and seq or pipe
            run(n, function() finish(t0) end)
        end)
    end)
    uv.run()
end

local cmd = arg[1]
if cmd == "keygen" and #arg == 1 then
    keygen()
elseif cmd == "server" and (#arg == 3 or (#arg == 4 and arg[4] == "--sandboxed"))
    and arg[2] == "--peer" then
    server(check_key(arg[3], "CLIENTKEY"), arg[4] == "--sandboxed")
elseif cmd == "client" and #arg == 7 then
    local mode = arg[4]
    if mode ~= "seq" and mode ~= "pipe" then usage() end
    client(arg[2], check_int(arg[3], 1, 65535, "PORT"), mode,
        check_int(arg[5], 1, 1000000000, "N"), check_int(arg[6], 0, 16 * 1024 * 1024, "SIZE"),
        check_key(arg[7], "SERVERKEY"))
else
    usage()
end
os.exit(0)
