-- peernet.runtime: sandboxed handler scripts from a directory, hot reload,
-- the CPU and memory bounds, capabilities, admin modules, and the trusted
-- API of run scripts. Real hosts on 127.0.0.1, real files, real states.
local peernet = require "peernet"
local uv = require "luv"
local N = require "support.net"

local write, logged = H.replace_file, N.logged

-- a runs the runtime on a handler directory; b calls it.
local function setup(opts)
  local w = {}
  w.a, w.b, w.ka, w.kb = N.pair()
  w.akey = w.ka:public_hex()
  w.dir = H.tmpdir()
  assert(os.execute("mkdir " .. w.dir .. "/admin"))
  local o = { log = function(level, msg) N.logs[#N.logs + 1] = level .. " " .. msg end }
  for k, v in pairs(opts or {}) do o[k] = v end
  w.rt = assert(peernet.runtime.new(w.a, o))
  function w.call(name, args, copts) return N.call(w.b, w.akey, name, args, copts) end
  function w.script(name, text) write(w.dir .. "/" .. name, text) end
  function w.load() return w.rt:load_dir(w.dir) end
  function w.close()
    w.rt:close()
    N.close(w.a, w.b)
    H.rmdir(w.dir)
  end
  return w
end

describe("handler scripts", function()
  local w
  before_each(function() w = setup() end)
  after_each(function() w.close() end)

  it("serve calls: a value, nil + reason, and a raised error", function()
    w.script("math.lua", [[
      peernet.expose("add", function(from, args) return args[1] + args[2] end)
      peernet.expose("whoami", function(from) return from end)
      peernet.expose("refuse", function() return nil, peernet.atom("nope") end)
      peernet.expose("boom", function() error("kaboom") end)
    ]])
    local report = w.load()
    assert.equal(1, #report)
    assert.is_true(report[1].ok)
    assert.same({ true, 5 }, { w.call("add", { 2, 3 }) })
    assert.same({ true, w.kb:public_hex() }, { w.call("whoami", {}) })
    local ok, reason, kind = w.call("refuse", {})
    assert.is_falsy(ok)
    assert.equal("nope", reason)
    assert.equal("remote", kind)
    ok, reason = w.call("boom", {})
    assert.is_falsy(ok)
    assert.equal("handler_crash", reason)
    -- the detail stays in the local log, with the file and line
    assert.truthy(logged("math.lua:4: kaboom"))
  end)

  it("echoes integers beyond int64 exactly: handlers see bigints, never floats", function()
    w.script("echo.lua", [[
      peernet.expose("echo", function(_, v) return v end)
      peernet.expose("kind", function(_, v)
        if peernet.is_bigint(v) then return "bigint " .. tostring(v) end
        return math.type(v) .. " " .. tostring(v)
      end)
      peernet.expose("cmp", function(_, v)
        local limit = peernet.bigint("1180591620717411303424")
        return peernet.tuple(v == limit, v < limit, v <= limit, math.maxinteger < v)
      end)
    ]])
    w.load()
    local etf = peernet.etf
    local p70 = "\131n\9\0" .. ("\0"):rep(8) .. "\64"
    for _, bin in ipairs({ p70, "\131n\8\0" .. ("\0"):rep(7) .. "\128", "\131n\8\0" .. ("\255"):rep(8),
      "\131n\9\1" .. ("\0"):rep(8) .. "\1" }) do
      local ok, v = w.call("echo", bin:sub(2), { raw = true })
      assert.is_true(ok)
      assert.equal(H.hex(bin), H.hex("\131" .. v))
    end
    assert.same({ true, "bigint 9223372036854775808" }, { w.call("kind", etf.bigint("9223372036854775808")) })
    assert.same({ true, "bigint 18446744073709551615" }, { w.call("kind", etf.bigint("18446744073709551615")) })
    assert.same({ true, "integer 9223372036854775807" }, { w.call("kind", math.maxinteger) })
    local ok, t = w.call("cmp", etf.decode(p70))
    assert.is_true(ok)
    assert.same({ true, false, true, true }, { t[1], t[2], t[3], t[4] })
  end)

  it("answers badarg for args with no Lua value, without running the handler", function()
    w.script("look.lua", [[
      local n = 0
      peernet.expose("look", function() n = n + 1 return n end)
    ]])
    w.load()
    local clash = "t\0\0\0\2w\1aa\1m\0\0\0\1aa\2" -- %{:a => 1, "a" => 2}
    assert.same({ false, "w\6badarg", "remote" }, { w.call("look", clash, { raw = true }) }) -- raw reason
    assert.same({ true, 1 }, { w.call("look", {}) })
  end)

  it("lets a handler wait: sleep, and a call to a third peer while serving", function()
    local kc = N.keys()
    local c = N.host(kc)
    c:trust(w.akey)
    w.a:trust(kc:public_hex())
    c:expose("double", function(_, x) return x * 2 end)
    assert(N.connect(w.a, kc:public_hex(), N.addr(c)))
    w.script("relay.lua", ([[
      local C = %q
      peernet.expose("relay", function(from, x)
        peernet.sleep(20)
        local v, err = peernet.call(C, "double", x)
        if not v then return nil, err end
        return v + 1
      end)
    ]]):format(kc:public_hex()))
    w.load()
    assert.same({ true, 21 }, { w.call("relay", 10) })
    N.close(c)
  end)

  it("answers forbidden when the authorize predicate refuses, without running the handler", function()
    w.script("guarded.lua", [[
      local ran = 0
      peernet.expose("secret", function() ran = ran + 1; return ran end,
        { authorize = function(from) return false end })
      peernet.expose("ran", function() return ran end)
    ]])
    w.load()
    local ok, reason = w.call("secret", {})
    assert.is_falsy(ok)
    assert.equal("forbidden", reason)
    assert.same({ true, 0 }, { w.call("ran", {}) })
  end)

  it("refuses a second script exposing the same name, with a clear error", function()
    w.script("a.lua", [[peernet.expose("dup", function() return "a" end)]])
    w.rt:load_file(w.dir .. "/a.lua")
    w.script("b.lua", [[peernet.expose("dup", function() return "b" end)]])
    local ok, err = w.rt:load_file(w.dir .. "/b.lua")
    assert.is_falsy(ok)
    assert.matches("handle 'dup' is already exposed by .*a%.lua", err)
    assert.same({ true, "a" }, { w.call("dup", {}) })
  end)

  it("reports every handle a script exposes, however many", function()
    w.script("many.lua", [[
      for i = 1, 100 do peernet.expose("h" .. i, function() return i end) end
    ]])
    local report = w.load()
    assert.equal(100, #report[1].handles)
    local scripts = w.rt:scripts()
    assert.equal(1, #scripts)
    local seen = {}
    for _, name in ipairs(scripts[1].handles) do seen[name] = true end
    for i = 1, 100 do assert.is_true(seen["h" .. i], "h" .. i .. " is listed") end
    assert.same({ true, 100 }, { w.call("h100", {}) })
  end)

  it("delivers events and runs timers", function()
    w.script("ev.lua", [[
      local seen, ticks = {}, 0
      peernet.on("disconnected", function(key) seen[#seen + 1] = key end)
      peernet.every(10, function() ticks = ticks + 1 end)
      local fired = false
      peernet.after(10, function() fired = true end)
      local never = peernet.after(20, function() error("cancelled timer ran") end)
      never:cancel()
      peernet.expose("state", function() return { ticks = ticks, fired = fired, seen = seen } end)
    ]])
    w.load()
    -- Five ticks of the 10 ms timer put the loop's clock past the cancelled
    -- 20 ms one: an ordering on the loop's own timers, whatever the machine's load.
    local st
    assert.is_true(N.wait(function()
      local ok, s = w.call("state", {})
      st = ok and s or nil
      return st ~= nil and st.fired and st.ticks >= 5
    end))
    assert.falsy(logged("cancelled timer ran"))
  end)
end)

describe("the sandbox", function()
  local w
  before_each(function() w = setup({ budget = 2000000, mem_cap = 16 * 1024 * 1024 }) end)
  after_each(function() w.close() end)

  it("reaches nothing outside the state", function()
    w.script("escape.lua", [==[
      local attempts = {
        io = function() return io.open("/etc/passwd") end,
        os_execute = function() return os.execute("true") end,
        os_exit = function() return os.exit(1) end,
        os_remove = function() return os.remove("/tmp/x") end,
        debug = function() return debug.getregistry() end,
        package = function() return package.loadlib("libc.so.6", "system") end,
        require = function() return require("luv") end,
        dofile = function() return dofile("/etc/passwd") end,
        loadfile = function() return loadfile("/etc/passwd") end,
        dump = function() return string.dump(function() end) end,
        binary = function()
          local f, err = load("\27Lua\84\0\25\147\13\10\26\10\4\8\8", "x", "b")
          assert(f, err); return f()
        end,
        binary_default_mode = function()
          local f, err = load("\27Lua\84\0\25\147\13\10\26\10\4\8\8")
          assert(f, err); return f()
        end,
        string_mt = function()
          getmetatable("").__index = { upper = function() return "pwned" end }
        end,
        setmetatable_string = function() return setmetatable("", {}) end,
        collect = function() return collectgarbage("collect") end,
        rawset_string = function() return rawset(getmetatable(""), "__index", {}) end,
      }
      peernet.expose("try", function(_, what)
        local ok, err = pcall(attempts[what])
        return { ok = ok, err = tostring(err), upper = ("a"):upper() }
      end)
      peernet.expose("allowed", function()
        return { os.time() > 0, type(os.clock()), math.max(1, 2), ("x"):rep(3),
                 collectgarbage("count") > 0 }
      end)
    ]==])
    w.load()
    for _, what in ipairs({ "io", "os_execute", "os_exit", "os_remove", "debug", "package",
                            "require", "dofile", "loadfile", "dump", "binary",
                            "binary_default_mode", "string_mt", "setmetatable_string",
                            "collect", "rawset_string" }) do
      local ok, r = w.call("try", what)
      assert.is_true(ok, what)
      assert.is_false(r.ok, what .. " succeeded: " .. r.err)
      assert.equal("A", r.upper, what)
    end
    assert.same({ true, { true, "number", 2, "xxx", true } }, { w.call("allowed", {}) })
  end)

  it("stops an infinite loop and a memory bomb with a prompt error; other scripts keep answering", function()
    w.script("bad.lua", [[
      peernet.expose("spin", function() while true do end end)
      peernet.expose("bomb", function()
        local t = {}
        for i = 1, math.huge do t[i] = ("x"):rep(1024) .. i end
      end)
      peernet.expose("catch", function()
        -- catching the budget error does not buy more time
        while true do pcall(function() while true do end end) end
      end)
      peernet.expose("coro", function()
        -- nor does spreading the loop over coroutines
        while true do
          local co = coroutine.wrap(function() for i = 1, 1e6 do end end)
          pcall(co)
        end
      end)
      peernet.expose("after", function() return "still here" end)
    ]])
    w.script("good.lua", [[peernet.expose("ping", function() return "pong" end)]])
    w.load()
    for _, name in ipairs({ "spin", "bomb", "catch", "coro" }) do
      local ok, reason = w.call(name, {}, { timeout = 30000 })
      assert.is_falsy(ok, name)
      assert.equal("handler_crash", reason, name)
      assert.same({ true, "pong" }, { w.call("ping", {}) })
      assert.same({ true, "still here" }, { w.call("after", {}) })
    end
    assert.truthy(logged("CPU budget exceeded"))
    assert.truthy(logged("not enough memory"))
  end)
end)

describe("hot reload", function()
  local w
  before_each(function() w = setup() end)
  after_each(function() w.close() end)

  it("replaces a changed script, keeps the old one on a syntax error, and revokes on delete", function()
    w.script("v.lua", [[peernet.expose("version", function() return 1 end)]])
    w.load()
    assert.same({ true, 1 }, { w.call("version", {}) })
    w.script("v.lua", [[peernet.expose("version", function() return 2 end)]])
    assert.is_true(N.wait(function() return select(2, w.call("version", {})) == 2 end))
    w.script("v.lua", "peernet.expose(\"version\", function() return 3 end\n  oops(")
    assert.is_true(N.wait(function() return logged("v%.lua:%d+:") ~= nil end))
    assert.truthy(logged("previous version keeps serving"))
    assert.same({ true, 2 }, { w.call("version", {}) })
    os.remove(w.dir .. "/v.lua")
    assert.is_true(N.wait(function() return select(2, w.call("version", {})) == "no_such_handle" end))
  end)

  it("loses no call while a script is reloaded under a steady stream of calls", function()
    w.script("s.lua", [[peernet.expose("n", function(_, x) peernet.sleep(1); return x end)]])
    w.load()
    local sent, done, bad = 0, 0, {}
    local versions = 0
    local stop = false
    local function reloads()
      local n = 0
      for _, l in ipairs(N.logs) do
        if l:find("s%.lua: reloaded") then n = n + 1 end
      end
      return n
    end
    local function fire()
      if stop then return end
      sent = sent + 1
      local x = sent
      w.b:call(w.akey, "n", x, function(ok, v)
        done = done + 1
        if not ok or v ~= x then bad[#bad + 1] = tostring(v) end
        fire()
      end)
    end
    for _ = 1, 20 do fire() end
    for v = 1, 5 do
      -- each version serves calls before the next replaces it: a count of
      -- answers, not a time
      assert.is_true(N.wait(function() return done >= v * 30 end))
      versions = versions + 1
      w.script("s.lua", ("-- version %d\n"):format(v)
        .. [[peernet.expose("n", function(_, x) peernet.sleep(1); return x end)]])
      assert.is_true(N.wait(function() return reloads() >= v end))
    end
    assert.is_true(N.wait(function() return done >= 6 * 30 end))
    stop = true
    assert.is_true(N.wait(function() return done == sent end))
    assert.equal(5, versions)
    assert.is_true(sent > 100)
    assert.same({}, bad)
    assert.truthy(logged("s%.lua: reloaded"))
  end)

  it("serves the calls already accepted with the function they came for when their handle is revoked", function()
    -- A call waiting its turn has no coroutine yet (its function and
    -- arguments are pushed when it first runs): the revoke must not leave
    -- it a freed registry slot. The calls after "drop" reach the host in
    -- the same write, so they are accepted before "drop" runs.
    w.script("r.lua", [[
      peernet.expose("h", function(_, x) return x * 2 end)
      peernet.expose("drop", function() return peernet.revoke("h") end)
      peernet.expose("after", function() return "fresh" end)
    ]])
    w.load()
    local answers = {}
    local function note(i) return function(ok, v) answers[i] = ok and v or v end end
    assert(w.b:call(w.akey, "drop", {}, note(0)))
    for i = 1, 5 do assert(w.b:call(w.akey, "h", i, note(i))) end
    assert(w.b:call(w.akey, "after", {}, note(6)))
    assert.is_true(N.wait(function() return answers[6] ~= nil end))
    assert.is_true(answers[0])
    for i = 1, 5 do
      -- accepted before the revoke: served; after it: refused by name
      if answers[i] ~= i * 2 then assert.equal("no_such_handle", answers[i]) end
    end
    assert.equal("fresh", answers[6])
    assert.falsy(logged("r%.lua: handler h failed"))
    assert.same({ false, "no_such_handle", "remote" }, { w.call("h", 1) })
  end)
end)

describe("capabilities", function()
  local w, devdir
  before_each(function()
    devdir = H.tmpdir()
    local config = H.tmpdir() .. "/config.lua"
    H.write_file(config, ([[
      return {
        ["device*.lua"] = { write = { %q }, read = { %q }, exec = { "/bin/echo" } },
      }
    ]]):format(devdir .. "/light", devdir .. "/*"))
    w = setup({ config = config })
  end)
  after_each(function() w.close(); H.rmdir(devdir) end)

  it("grants listed paths and programs, and refuses everything else with 'not permitted'", function()
    local body = ([[
      local dev = %q
      peernet.expose(NAME .. ".write", function(_, v) return host.write(dev .. "/light", v) end)
      peernet.expose(NAME .. ".other", function(_, v) return host.write(dev .. "/other", v) end)
      peernet.expose(NAME .. ".read", function() return host.read(dev .. "/light") end)
      peernet.expose(NAME .. ".exec", function(_, argv) local r = host.exec(argv); return r.stdout end)
    ]]):format(devdir)
    w.script("device.lua", "local NAME = 'dev'\n" .. body)
    w.script("plain.lua", "local NAME = 'plain'\n" .. body)
    w.load()
    assert.same({ true, true }, { w.call("dev.write", "on") })
    assert.equal("on", H.read_file(devdir .. "/light"))
    assert.same({ true, "on" }, { w.call("dev.read", {}) })
    assert.same({ true, "hi there\n" }, { w.call("dev.exec", { "/bin/echo", "hi", "there" }) })
    -- ungranted path, ungranted program, ungranted script
    for _, c in ipairs({ { "dev.other", "x" }, { "dev.exec", { "/bin/sh", "-c", "true" } },
                         { "plain.write", "x" }, { "plain.exec", { "/bin/echo" } } }) do
      local ok, reason = w.call(c[1], c[2])
      assert.is_falsy(ok, c[1])
      assert.equal("handler_crash", reason)
    end
    assert.truthy(logged("not permitted: .*/other is not granted to device%.lua"))
    assert.truthy(logged("not permitted: /bin/sh is not granted"))
    assert.truthy(logged("not permitted: .* is not granted to plain%.lua"))
    assert.is_nil(io.open(devdir .. "/other"))
  end)
end)

describe("admin operations", function()
  local w
  before_each(function() w = setup() end)
  after_each(function() w.close() end)

  it("beam_admin runs rpc and cast against admin modules, and refuses anything else", function()
    w.script("admin/Lights.lua", [[
      local M, state = {}, "off"
      function M.set(v) state = v; return state end
      function M.get() return state end
      function M.add(a, b) return a + b end
      return M
    ]])
    w.script("expose.lua", ([[
      peernet.admin.expose{ authorize = function(from) return from == %q end }
    ]]):format(w.kb:public_hex()))
    w.load()
    local T, A = peernet.tuple, peernet.atom
    assert.same({ true, 5 }, { w.call("beam_admin", T(A "rpc", A "Elixir.Lights", A "add", { 2, 3 })) })
    local ok, v = w.call("beam_admin", T(A "cast", A "Lights", A "set", { "on" }))
    assert.is_true(ok)
    assert.equal("ok", v)
    assert.is_true(N.wait(function() return select(2, w.call("beam_admin", T(A "rpc", A "Lights", A "get", {}))) == "on" end))
    for _, bad in ipairs({ T(A "exec", A "Lights", A "get", {}), { "rpc" }, T(A "rpc", A "Lights", A "get"),
                           T(A "rpc", A "Lights", A "get", 5), T(A "rpc", "Lights", A "add", { 1, 2 }),
                           T(A "rpc", A "Lights", "add", { 1, 2 }), T(A "cast", "Elixir.Lights", "set", { "x" }) }) do
      ok, v = w.call("beam_admin", bad)
      assert.is_falsy(ok)
      assert.equal("unknown_beam_dist_op", v)
    end
    ok, v = w.call("beam_admin", T(A "rpc", A "Lights", A "nope", {}))
    assert.is_falsy(ok)
    assert.equal("undef", v)
  end)

  it("refuses to expose beam_admin without an authorize predicate", function()
    w.script("open.lua", [[peernet.expose("beam_admin", function() return 1 end)]])
    local report = w.load()
    assert.is_false(report[1].ok)
    assert.matches("authorize predicate", report[1].err)
    local ok, v = w.call("beam_admin", {})
    assert.is_falsy(ok)
    assert.equal("no_such_handle", v)
  end)

  it("peernet.admin.call and .cast from a run script reach another peer's admin module", function()
    w.script("admin/Counter.lua", [[
      local n = 0
      return { bump = function(by) n = n + by; return n end, get = function() return n end }
    ]])
    w.script("expose.lua", [[peernet.admin.expose{ authorize = function() return true end }]])
    w.load()
    local rtb = peernet.runtime.new(w.b)
    local api = rtb:api()
    local out
    rtb:spawn(function()
      local r1 = api.admin.call(w.akey, "Counter", "bump", { 5 })
      -- The cast's ok comes once its bump is queued to run on a; the
      -- call after it is queued behind the bump.
      local r2 = api.admin.cast(w.akey, "Counter", "bump", { 1 })
      local r3 = api.admin.call(w.akey, "Elixir.Counter", "get", {})
      out = { r1, r2, r3 }
    end)
    assert.is_true(N.wait(function() return out end))
    assert.same({ 5, true, 6 }, out)
    rtb:close()
  end)
end)

describe("the trusted API (run scripts)", function()
  it("waits in tasks, exposes, tracks busy, and reports errors with a traceback", function()
    local a, b, ka, kb = N.pair()
    local rt = peernet.runtime.new(a, {})
    local errors = {}
    local rtb = peernet.runtime.new(b, { on_error = function(msg) errors[#errors + 1] = msg end })
    local pa, pb = rt:api(), rtb:api()
    assert.equal(ka:public_hex(), pa.self())
    pa.expose("hello", function(from, name) return "hello " .. name end)
    assert.is_true(rt:busy())
    local got
    rtb:spawn(function(who)
      got = pb.call(ka:public_hex(), "hello", who)
      error("deliberate")
    end, "world")
    assert.is_true(N.wait(function() return got and #errors == 1 end))
    assert.equal("hello world", got)
    assert.matches("deliberate", errors[1])
    assert.matches("stack traceback", errors[1])
    assert.is_false(rtb:busy())
    pa.revoke("hello")
    assert.is_false(rt:busy())
    assert.has_error(function() pb.call(ka:public_hex(), "hello", "x") end)
    rt:close()
    rtb:close()
    N.close(a, b)
  end)

  it("call and send with the args left out send nil", function()
    local a, b, ka = N.pair()
    local seen = {}
    a:expose("what", function(_, args) seen[#seen + 1] = { args } return args == nil end)
    local rtb = peernet.runtime.new(b, {})
    local pb = rtb:api()
    local out
    rtb:spawn(function()
      local r1 = table.pack(pb.call(ka:public_hex(), "what"))
      local r2 = table.pack(pb.send(ka:public_hex(), "what"))
      out = { r1, r2 }
    end)
    assert.is_true(N.wait(function() return out and #seen == 2 end))
    assert.same({ n = 1, true }, out[1])
    assert.is_true(out[2][1])
    assert.same({ {}, {} }, seen) -- nil both times
    rtb:close()
    N.close(a, b)
  end)

  it("a reply holding a pid fails that call with its own reason; the link stays", function()
    local a, b, ka, kb = N.pair()
    local kr = N.keys()
    b:trust(kr:public_hex())
    local raw = N.raw(b:port())
    raw:handshake(kr:secret())
    assert(N.wait(function() return (b:peer(kr:public_hex()) or {}).status == "connected" end))
    local rtb = peernet.runtime.new(b, {})
    local pb = rtb:api()
    local out
    rtb:spawn(function()
      local r1 = table.pack(pb.call(kr:public_hex(), "give", 1))
      local r2 = table.pack(pb.call(kr:public_hex(), "give", 2))
      out = { r1, r2 }
    end)
    local pid = H.unhex("5864000d6e6f6e6f6465406e6f686f7374000000600000000000000000")
    local function reply(c, term)
      local id = peernet.etf.encode(peernet.etf.bigint(c.id_str)):sub(2)
      raw:send_env("\131h\3w\5reply" .. id .. "h\2w\2ok" .. term)
    end
    reply(raw:recv_env(), pid)
    reply(raw:recv_env(), "a\42")
    assert.is_true(N.wait(function() return out end))
    assert.is_nil(out[1][1])
    assert.matches("^cannot decode the reply: etf: pid %(tag 88%)", out[1][2])
    assert.equal("undecodable", out[1][3]) -- the reply came, but holds no Lua value
    assert.same({ n = 1, 42 }, out[2])
    assert.is_false(raw.eof)
    assert.equal("connected", b:peer(kr:public_hex()).status)
    raw:close()
    rtb:close()
    N.close(a, b)
  end)

  it("tells a remote {error, timeout} from a local timeout by the kind: nil, reason, kind", function()
    local a, b, ka, kb = N.pair()
    local kc = N.keys()
    b:trust(kc:public_hex())
    a:expose("remote_timeout", function() return nil, peernet.atom("timeout") end)
    a:expose("never", function(_, _, req) return req end) -- answers nothing
    local rtb = peernet.runtime.new(b, {})
    local pb = rtb:api()
    local out
    rtb:spawn(function()
      out = {
        remote = table.pack(pb.call(ka:public_hex(), "remote_timeout", 1)),
        timeout = table.pack(pb.call(ka:public_hex(), "never", 1, { timeout = 20 })),
        call_away = table.pack(pb.call(kc:public_hex(), "x", 1)),
        send_away = table.pack(pb.send(kc:public_hex(), "x", 1)),
      }
    end)
    assert.is_true(N.wait(function() return out end))
    assert.same({ n = 3, nil, "timeout", "remote" }, out.remote)
    assert.same({ n = 3, nil, "timeout", "timeout" }, out.timeout)
    assert.same({ n = 3, nil, "not_connected", "local" }, out.call_away)
    assert.same({ n = 3, nil, "not_connected", "local" }, out.send_away)
    rtb:close()
    N.close(a, b)
  end)

  it("rt:api() is one table with the module: what it lacks comes from require 'peernet'", function()
    local a, b = N.pair()
    local rt = peernet.runtime.new(a, {})
    local api = rt:api()
    assert.equal(api, rt:api())
    assert.equal(peernet.host, api.host)
    assert.equal(peernet.keys, api.keys)
    assert.equal(peernet.null, api.null)
    assert.is_function(api.call)
    rt:close()
    N.close(a, b)
  end)

  it("survives a run script closing its runtime from inside an event handler", function()
    local a, b, ka, kb = N.pair()
    local rt = peernet.runtime.new(a, {})
    local api = rt:api()
    local fired, seen = 0, nil
    api.on("disconnected", function() fired = fired + 1; rt:close() end)
    api.on("disconnected", function() fired = fired + 1 end)
    -- Sentinel: a runtime made later hears the same event after rt's handlers.
    local later = peernet.runtime.new(a, {})
    later:api().on("disconnected", function() seen = fired end)
    b:untrust(ka:public_hex())
    assert.is_true(N.wait(function() return seen end))
    assert.equal(1, seen)
    assert.equal(1, fired) -- the second handler belonged to the closed runtime
    assert.has_error(function() api.self() end)
    later:close()
    N.close(a, b)
  end)

  it("survives a run script closing its runtime when a handler's reply drains the link", function()
    -- The reply passes PN_FLUSH_EARLY with no write in flight: it goes into
    -- the kernel from inside the handler's answer, and the queue is at the
    -- low-water mark. "drained" must not reach the run script there: its
    -- rt:close() would free the handler's task under its own answer.
    local a, b, ka, kb = N.pair({ frame_cap = 4096, max_outbuf = 6000 })
    local akey, bkey = ka:public_hex(), kb:public_hex()
    local dir = H.tmpdir()
    write(dir .. "/big.lua", [[
      peernet.expose("go", function(from)
        assert(peernet.send(from, "sink", ("x"):rep(3200))) -- queued: over half of max_outbuf
        return select(2, peernet.send(from, "sink", "y"))
      end)
      peernet.expose("big", function() return ("z"):rep(2000) end)
    ]])
    local rt = peernet.runtime.new(a, {})
    local api = rt:api()
    local drained = 0
    api.on("drained", function() drained = drained + 1; rt:close() end)
    rt:load_dir(dir)
    local answers = {}
    -- one write: both calls are served in one turn of the run queue
    assert(b:call(akey, "go", {}, function(ok, v) answers.go = { ok, v } end))
    assert(b:call(akey, "big", {}, function(ok, v) answers.big = { ok, v and #v } end))
    assert.is_true(N.wait(function() return answers.big and drained == 1 end))
    assert.same({ true, "busy" }, answers.go)
    assert.same({ true, 2000 }, answers.big)
    assert.has_error(function() api.self() end)
    a:expose("still", function() return "here" end)
    assert.same({ true, "here" }, { N.call(b, akey, "still", {}) })
    N.close(a, b)
    H.rmdir(dir)
  end)

  it("survives a run script closing its runtime when a handler's reply overflows a link whose peer does not read", function()
    -- Past twice max_outbuf queued the reply closes the link from inside
    -- the handler's answer; "disconnected" runs the run script there, and
    -- its rt:close() must wait until that task is done with.
    local ka, kr = N.keys(), N.keys()
    local a = N.host(ka, { frame_cap = 4096, max_outbuf = 6000 })
    a:trust(kr:public_hex())
    local dir = H.tmpdir()
    write(dir .. "/big.lua", [[peernet.expose("big", function() return ("z"):rep(4000) end)]])
    local rt = peernet.runtime.new(a, {})
    local api = rt:api()
    local fired = 0
    api.on("disconnected", function() fired = fired + 1; rt:close() end)
    rt:load_dir(dir)
    local raw = N.raw(a:port())
    raw:handshake(kr:secret())
    raw.tcp:read_stop() -- the replies fill the kernel's buffers, then a's queue
    local etf, env = peernet.etf, peernet.envelope
    for id = 1, 4000 do raw:send_env(env.call(id, "big", etf.encode({}):sub(2))) end
    assert.is_true(N.wait(function() return fired > 0 end, 60000))
    assert.equal(1, fired)
    assert.has_error(function() api.self() end)
    assert.truthy(a:stats())
    raw:close()
    N.close(a)
    H.rmdir(dir)
  end)

  it("survives a run script closing the host under its own running task", function()
    local a, b, ka, kb = N.pair()
    local rt = peernet.runtime.new(a, {})
    local api = rt:api()
    local pending_result, after
    rt:spawn(function()
      -- a call in flight from another task, failed by the close
      rt:spawn(function() pending_result = { api.call(kb:public_hex(), "never", {}) } end)
      a:close()
      after = { pcall(api.self) }
    end)
    b:expose("never", function(_, _, req) return req end) -- answers nothing
    assert.is_true(N.wait(function() return after and pending_result end))
    assert.is_false(after[1])
    assert.matches("host is closed", after[2])
    assert.same({ nil, "closed", "closed" }, pending_result) -- kind: no reply came, the link closed
    rt:close()
    N.close(b)
  end)

  it("resolves trust-list labels, and sees the list change", function()
    local dir = H.tmpdir()
    local kb, kc = N.keys(), N.keys()
    local store = assert(peernet.trust.open(dir .. "/trust.list"))
    assert(store:add(kb:public_hex(), { label = "bob" }))
    assert(store:save())
    local a = N.host(N.keys())
    local rt = peernet.runtime.new(a, { trust = dir .. "/trust.list" })
    local api = rt:api()
    assert.equal(kb:public_hex(), api.resolve("bob"))
    local none, err = api.resolve("carol")
    assert.is_nil(none)
    assert.matches("neither a key nor a label", err)
    assert(store:add(kc:public_hex(), { label = "carol" }))
    assert(store:save())
    assert.equal(kc:public_hex(), api.resolve("carol"))
    assert.equal(kc:public_hex(), api.resolve(kc:public_hex()))
    rt:close()
    N.close(a)
    H.rmdir(dir)
  end)

  it("checks scripts without a network: file:line for errors", function()
    local dir = H.tmpdir()
    H.write_file(dir .. "/ok.lua", [[peernet.expose("x", function() return 1 end)]])
    H.write_file(dir .. "/bad.lua", "local x = \n peernet.expose(")
    H.write_file(dir .. "/raise.lua", "\n\nerror('at load')")
    assert.is_true(peernet.runtime.check(dir .. "/ok.lua"))
    local ok, err = peernet.runtime.check(dir .. "/ok.lua", dir .. "/bad.lua", dir .. "/raise.lua")
    assert.is_falsy(ok)
    assert.matches("bad%.lua:2:", err)
    assert.matches("raise%.lua:3: at load", err)
    uv.run("nowait")
    H.rmdir(dir)
  end)
end)

describe("events from LAN discovery", function()
  it("a handler script hears `discovered` when a stranger announces itself", function()
    local probe = uv.new_udp()
    assert(probe:bind("0.0.0.0", 0))
    local port = probe:getsockname().port
    probe:close()
    local u = uv.new_udp()
    local ka, kx = N.keys(), N.keys()
    local a = N.host(ka, { discovery = true, announce_port = port, broadcast = "127.255.255.255",
                           announce_v6 = false })
    local dir = H.tmpdir()
    H.write_file(dir .. "/watch.lua", [[
      local seen = {}
      peernet.on("discovered", function(key)
        for _, p in ipairs(peernet.peers()) do
          if p.key == key then seen[#seen + 1] = { key = key, trusted = p.trusted, status = p.status } end
        end
      end)
      peernet.every(10, function()
        if #seen > 0 then peernet.log.warn("discovered %s trusted=%s status=%s",
          seen[1].key, tostring(seen[1].trusted), seen[1].status); seen = {} end
      end)
    ]])
    local rt = peernet.runtime.new(a, { log = function(level, msg) N.logs[#N.logs + 1] = msg end })
    assert.is_true(rt:load_dir(dir)[1].ok)
    -- a stranger's announce: 39 bytes, our port
    local sent = false
    u:send(peernet.announce.encode(4040, kx:public()), "127.0.0.1", port, function() sent = true end)
    assert.is_true(N.wait(function()
      return logged("discovered " .. kx:public_hex() .. " trusted=false status=discovered") ~= nil
    end))
    u:close()
    rt:close()
    N.close(a)
    H.rmdir(dir)
  end)
end)
