-- peernet-host console (issue 16, docs/remote.md): lines typed on the
-- laptop run on a real serve in a sandbox of their own, through a pipe and
-- through a pseudo-terminal (script(1)). Every wait is on what they print.
local uv = require "luv"
local N = require "support.net"
local C = require "support.cli"

local dd = C.dd

teardown(C.cleanup)

local function write(path, text, mode)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  uv.fs_chmod(path, tonumber(mode or "600", 8))
end

local function expect_in(p, field, pattern)
  assert(N.wait(function() return p[field]:find(pattern) ~= nil or p.code ~= nil end, 15000),
    "no '" .. pattern .. "' in " .. field .. ": " .. p[field] .. "\nstderr: " .. p.err)
  assert(p[field]:find(pattern), "exited before '" .. pattern .. "': " .. p[field] .. "\nstderr: " .. p.err)
end

-- A device serving with rights for the laptop, and a laptop that trusts it.
local function pair(peers)
  local base = C.tmpdir()
  local device, dkey = C.init(base .. "/device")
  local laptop, lkey = C.init(base .. "/laptop")
  assert(C.run(dd(device, "trust", "add", lkey, "--label", "laptop")) == 0)
  write(device .. "/config.lua", "return {\n  peers = " .. peers .. ",\n}\n")
  local p = C.spawn(dd(device, "serve", "--no-discovery", "--listen", "127.0.0.1:0"))
  local port = C.expect(p, "serving %x+ on 127%.0%.0%.1:(%d+)")
  assert(C.run(dd(laptop, "trust", "add", dkey, "--label", "device", "--addr", "127.0.0.1:" .. port)) == 0)
  return { dir = device, p = p }, { dir = laptop, key = lkey, base = base }
end

local function stop(d)
  C.kill(d.p, "sigterm")
  C.wait(d.p)
end

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

describe("a console session's state (peernet.console)", function()
  local peernet = require "peernet"

  it("keeps globals, stops a loop at its budget and goes on, crosses functions as text", function()
    local s = peernet.console.new { budget = 100000 }
    assert.same({ true, { n = 0, v = {} } }, { s:eval("x = 1") })
    local ok, e = s:eval("while true do end")
    assert.is_false(ok)
    assert.equal("too much computation", e)
    local ok2, v = s:eval("x + 1, string.len")
    assert.is_true(ok2)
    assert.equal(2, v.n)
    assert.equal(2, v.v[1])
    assert.matches("^function: ", v.v[2])
    local _, pv = s:eval("print(('x'):rep(40000)) print(('y'):rep(40000))")
    assert.is_true(pv.cut)
    assert.truthy(#pv.out <= 64 * 1024)
    local ok3, e3 = s:eval(("x"):rep(peernet.console.MAX_TEXT + 1))
    assert.is_false(ok3)
    assert.matches("more than the limit", e3)
    s:close()
  end)

  it("has the host.* grants it is given, refuses the rest, and waits for host.exec without blocking", function()
    local dir = assert(uv.fs_realpath(C.tmpdir()))
    write(dir .. "/granted.txt", "granted text")
    write(dir .. "/other.txt", "secret")
    local s = peernet.console.new()
    local ok, e = s:eval("host.read('" .. dir .. "/granted.txt')")
    assert.is_false(ok)
    assert.matches("not permitted: " .. dir .. "/granted%.txt is not granted to this console", e)
    s:grant({ read = { dir .. "/gr*.txt" }, exec = { "/bin/echo" } }, "the console of k", "/x/config.lua")
    assert.same({ true, { n = 1, v = { "granted text" } } }, { s:eval("host.read('" .. dir .. "/granted.txt')") })
    ok, e = s:eval("host.read('" .. dir .. "/other.txt')")
    assert.is_false(ok)
    assert.matches("host%.read: not permitted: " .. dir .. "/other%.txt is not granted to the console of k in /x/config%.lua", e)
    ok, e = s:eval("host.write('" .. dir .. "/granted.txt', 'x')")
    assert.is_false(ok)
    assert.matches("host%.write: not permitted", e)
    ok, e = s:eval("host.exec({'/bin/echo', 'hi'})")
    assert.is_false(ok)
    assert.matches("host%.exec waits", e)
    local got
    assert.equal(0, select("#", s:eval("local r = host.exec({'/bin/echo', 'from', 'exec'}) return r.stdout, r.status",
      function(ok2, v2) got = { ok2, v2 } end)))
    local busy, why = s:eval("1")
    assert.is_false(busy)
    assert.matches("still running", why)
    assert(N.wait(function() return got ~= nil end, 15000))
    assert.same({ true, { n = 2, v = { "from exec\n", 0 } } }, got)
    ok, e = s:eval("host.exec({'/bin/cat', '/etc/passwd'})", function() end)
    assert.is_false(ok)
    assert.matches("host%.exec: not permitted: /bin/cat is not granted", e)
    -- Closed while a line waits: the program is killed, later never comes.
    s:grant({ exec = { "/bin/sleep" } })
    local late = false
    assert.equal(0, select("#", s:eval("host.exec({'/bin/sleep', '30'})", function() late = true end)))
    s:close()
    N.spin(50)
    assert.is_false(late)
  end)
end)

describe("a console right's grants in config.lua", function()
  local rights = require "peernet.cli.rights"

  it("take the scripts' syntax and name file:line in a mistake", function()
    local dir = C.tmpdir()
    local path = dir .. "/config.lua"
    write(path, 'return {\n  peers = {\n    laptop = { console = { read = { "/sys/*" }, exec = { "/bin/echo" } } },\n  },\n}\n')
    local t = assert(rights.read(path))
    assert.same({ "/sys/*" }, t.laptop.console.read)
    write(path, 'return {\n  peers = {\n    laptop = { console = { read = { "sys/*" } } },\n  },\n}\n')
    local none, e = rights.read(path)
    assert.is_nil(none)
    assert.matches('config%.lua:3: peers%["laptop"%]%.console must be true, false or { read = .* got read%[1%] = "sys/%*"', e)
    write(path, 'return { peers = { laptop = { console = { run = { "/bin/sh" } } } } }')
    none, e = rights.read(path)
    assert.is_nil(none)
    assert.matches('got an entry "run"', e)
  end)
end)

describe("the device's console sessions", function()
  local console = require "peernet.cli.console"

  it("answer only their key, and at most MAX_SESSIONS are open", function()
    local logged = {}
    local set = console.new { log = function(_, m) logged[#logged + 1] = m end, who = function(k) return k end }
    local first = assert(set.handle("a", { open = true })).session
    assert.same({ n = 1, v = { 3 } }, set.handle("a", { session = first, line = "1 + 2" }))
    local none, why = set.handle("b", { session = first, line = "1 + 2" })
    assert.is_nil(none)
    assert.matches("no such console session", why)
    -- one key holds at most KEY_SESSIONS_MAX of them
    for _ = 1, console.KEY_SESSIONS_MAX do assert(set.handle("b", { open = true })) end
    local mine, mwhy = set.handle("b", { open = true })
    assert.is_nil(mine)
    assert.matches("too many console sessions of this key", mwhy)
    local opened = 1 + console.KEY_SESSIONS_MAX
    local k = 0
    while opened < console.MAX_SESSIONS do
      k = k + 1
      assert(set.handle("k" .. k, { open = true }))
      opened = opened + 1
    end
    local full, fwhy = set.handle("c", { open = true })
    assert.is_nil(full)
    assert.matches("too many console sessions %(", fwhy)
    set.stop("b")
    for i = 1, k do set.stop("k" .. i) end
    assert.equal(1, set.count())
    assert.is_true(set.handle("a", { session = first, close = true }))
    assert.equal(0, set.count())
    assert.matches("closed %(by its key%)", logged[#logged])
  end)
end)

describe("console", function()
  it("evaluates lines on the device, keeps its globals, prints errors and .load FILE (stdin a pipe)", function()
    local d, l = pair("{ laptop = { console = true } }")
    local file = l.base .. "/lib.lua"
    write(file, "function double(n) return n * 2 end\nreturn \"loaded\"\n")
    local p = C.spawn(dd(l.dir, "console", "device"), { stdin = true })
    C.type(p, "x = 20\nx * 2 + 2\n")
    expect_in(p, "out", "^42\n")
    expect_in(d.p, "err", "console %x+ opened by " .. l.key:sub(1, 16) .. " %(laptop%)")
    C.type(p, "error('boom')\n")
    expect_in(p, "err", "error: console:1: boom")
    C.type(p, "string.rep('x', 3), nil, { a = 1 }\n")
    expect_in(p, "out", '\n"xxx"\nnil\n{a = 1}\n')
    C.type(p, ".load " .. file .. "\ndouble(21)\n")
    expect_in(p, "out", '\n"loaded"\n42\n')
    C.type(p, "print('on the device', x) return 1\n")
    expect_in(p, "out", "\non the device\t20\n1\n")
    C.eof(p)
    C.wait(p)
    assert.equal(0, p.code, p.err)
    expect_in(d.p, "err", "console %x+ of " .. l.key:sub(1, 16) .. " %(laptop%) closed %(by its key%)")
    stop(d)
  end)

  it("gives a session the host.* grants of its key's console right, and none without them", function()
    local files = assert(uv.fs_realpath(C.tmpdir()))
    write(files .. "/granted.txt", "granted text")
    write(files .. "/other.txt", "secret")
    local d, l = pair(('{ laptop = { console = { read = { "%s/granted.txt" }, exec = { "/bin/echo" } } } }'):format(files))
    local p = C.spawn(dd(l.dir, "console", "device"), { stdin = true })
    C.type(p, "host.read('" .. files .. "/granted.txt')\n")
    expect_in(p, "out", '^"granted text"\n')
    C.type(p, "host.read('" .. files .. "/other.txt')\n")
    expect_in(p, "err", "host%.read: not permitted: " .. files .. "/other%.txt is not granted to the console of "
      .. l.key:sub(1, 16) .. " %(laptop%) in " .. d.dir .. "/config%.lua")
    C.type(p, "(host.exec({'/bin/echo', 'from-exec'}).stdout:match('%S+'))\n")
    expect_in(p, "out", '\n"from%-exec"\n')
    C.eof(p)
    C.wait(p)
    assert.equal(0, p.code, p.err)
    stop(d)

    local d2, l2 = pair("{ laptop = { console = true } }")
    local p2 = C.spawn(dd(l2.dir, "console", "device"), { stdin = true })
    C.type(p2, "host.read('" .. files .. "/granted.txt')\n")
    expect_in(p2, "err", "host%.read: not permitted")
    C.type(p2, "host.exec({'/bin/echo', 'x'})\n")
    expect_in(p2, "err", "host%.exec: not permitted: /bin/echo")
    C.eof(p2)
    C.wait(p2)
    assert.equal(0, p2.code, p2.err)
    stop(d2)
  end)

  it("runs on a terminal: a prompt, a result, .exit", function()
    local d, l = pair("{ laptop = { console = true } }")
    local words = { shell_quote(C.bin) }
    for _, a in ipairs(dd(l.dir, "console", "device")) do words[#words + 1] = shell_quote(a) end
    -- On a terminal the prompt uses lua-readline when it is installed; in
    -- the sanitizer build its library's allocations, never freed and
    -- unloaded with the Lua state, would read as leaks LSan cannot name
    -- (so cannot suppress): this one child runs without leak checks.
    local asan = os.getenv("ASAN_OPTIONS")
    local argv = { "env", "-u", "LD_PRELOAD" }
    if asan then argv[#argv + 1] = "ASAN_OPTIONS=" .. asan .. ":detect_leaks=0" end
    for _, a in ipairs { "script", "-qefc", table.concat(words, " "), "/dev/null" } do argv[#argv + 1] = a end
    local p = C.spawn({}, { stdin = true, argv = argv })
    expect_in(p, "out", "device> ")
    C.type(p, "6 * 7\n")
    expect_in(p, "out", "[\r\n]42\r?\n")
    C.type(p, ".exit\n")
    C.wait(p)
    assert.equal(0, p.code, p.out)
    stop(d)
  end)

  it("is refused with forbidden to a key without the console right, and the device logs it", function()
    local d, l = pair("{ laptop = { logs = true } }")
    local p = C.spawn(dd(l.dir, "console", "device"), { stdin = true })
    C.type(p, "1 + 1\n")
    C.eof(p)
    C.wait(p)
    assert.equal(3, p.code)
    assert.matches("forbidden", p.err)
    expect_in(d.p, "err", "refused peernet%.console from " .. l.key:sub(1, 16) .. " %(laptop%): no console right")
    stop(d)
  end)
end)
