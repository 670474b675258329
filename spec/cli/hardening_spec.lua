-- The tester's attacks on the operator features (issue 14), each as it was
-- made, and what the operator sees now: serve's settings file read like
-- config.lua and evaluated in the C sandbox, trust edits that cannot
-- freeze serve or trust a key a LAN attacker picked, stranger events that
-- a flood cannot multiply. Real child processes; every wait is on what
-- they print or answer.
local uv = require "luv"
local peernet = require "peernet"
local control = require "peernet.control"
local N = require "support.net"
local C = require "support.cli"

local dd = C.dd

teardown(C.cleanup)

local function setup()
  local dir, key = C.init(C.tmpdir() .. "/data")
  return dir, key
end

local function serve(dir, ...)
  return C.spawn(dd(dir, "serve", "--no-discovery", "--listen", "127.0.0.1:0", ...))
end

local function stop(p)
  C.kill(p, "sigterm")
  C.wait(p)
end

-- One raw request on the control socket of dir: the answer.
local function ask(dir, req)
  local answer, e
  control.request(dir .. "/control.sock", req, 5000, function(a, ae) answer, e = a, ae or "no answer" end)
  assert(N.wait(function() return answer or e end))
  return assert(answer, e)
end

describe("host.lua, like config.lua, is the operator's file", function()
  it("a FIFO, a symlink or a file of others' is refused with a message, not waited on", function()
    local dir = setup()
    local path = dir .. "/host.lua"
    assert.equal(0, os.execute("mkfifo -m 600 " .. H.q(path)) and 0)
    local code, _, err = C.run(dd(dir, "config"))
    assert.equal(1, code)
    assert.truthy(err:find(path .. " is not a regular file", 1, true), err)
    os.remove(path)
    H.write_file(dir .. "/other", "return {}\n")
    assert(uv.fs_symlink(dir .. "/other", path))
    code, _, err = C.run(dd(dir, "config"))
    assert.equal(1, code)
    assert.truthy(err:find(path .. " is a symbolic link; refusing it", 1, true), err)
  end)

  it("a running serve whose host.lua became a FIFO logs it on SIGHUP and keeps answering", function()
    local dir = setup()
    local p = serve(dir)
    C.expect(p, "serving ")
    assert(os.execute("mkfifo -m 600 " .. H.q(dir .. "/host.lua")))
    C.kill(p, "sighup")
    assert(N.wait(function() return p.err:find("host.lua is not a regular file (host.lua not applied", 1, true) end),
      p.err)
    local code, out, err = C.run(dd(dir, "status"))
    assert.equal(0, code, err)
    assert.matches("running", out)
    stop(p)
  end)

  it("is evaluated with a memory cap and an instruction budget", function()
    local dir = setup()
    H.write_file(dir .. "/host.lua", 'local s = "x" for i = 1, 31 do s = s .. s end return {}\n')
    local code, _, err = C.run(dd(dir, "config"))
    assert.equal(1, code)
    assert.truthy(err:find(dir .. "/host.lua: too much memory", 1, true), err)
    H.write_file(dir .. "/host.lua", "while true do end\n")
    code, _, err = C.run(dd(dir, "config"))
    assert.equal(1, code)
    assert.truthy(err:find(dir .. "/host.lua: too much computation", 1, true), err)
  end)

  it("a key of pattern characters is named with its line at once (plain find)", function()
    local dir = setup()
    local key = ("(.-)"):rep(40) .. "x"
    H.write_file(dir .. "/host.lua", ("return {\n\n  [%q] = 1,\n}\n"):format(key))
    local t0 = uv.hrtime()
    local code, _, err = C.run(dd(dir, "config"))
    assert.equal(1, code)
    assert.truthy(err:find(dir .. "/host.lua:3: unknown setting", 1, true), err)
    assert.is_true((uv.hrtime() - t0) < 5e9) -- was > 20 s of backtracking
  end)

  it("a key holding a newline cannot put a line of its own into the log", function()
    local dir = setup()
    H.write_file(dir .. "/host.lua", 'return { ["x\\n2026-01-01T00:00:00Z peernet [error] forged"] = 1 }\n')
    local code, _, err = C.run(dd(dir, "config"))
    assert.equal(1, code)
    assert.truthy(err:find('unknown setting "x\\n2026', 1, true), err)
    assert.is_nil(err:find("\n2026", 1, true), err)
  end)

  it("listen is checked as an address: a port past 65535 names the file and line", function()
    local dir = setup()
    H.write_file(dir .. "/host.lua", 'return {\n  listen = "127.0.0.1:99999999",\n}\n')
    local code, _, err = C.run(dd(dir, "config"))
    assert.equal(1, code)
    assert.truthy(err:find(dir .. '/host.lua:2: listen must be HOST:PORT, got "127.0.0.1:99999999"', 1, true), err)
  end)
end)

describe("the trust op of a running serve", function()
  it("answers a malformed request, keeps no lock, and a trust add after it works at once", function()
    local dir, key = setup()
    local p = serve(dir)
    C.expect(p, "serving ")
    local a = ask(dir, { op = "trust", action = "add", key = ("cd"):rep(32), label = 5 })
    assert.is_false(a.ok)
    assert.equal("usage", a.kind)
    -- The host's own key, as a raw request: refused as the CLI refuses it.
    a = ask(dir, { op = "trust", action = "add", key = key })
    assert.is_false(a.ok)
    assert.equal("that is this host's own key", a.message)
    local code, out, err = C.run(dd(dir, "trust", "add", ("cd"):rep(32), "--label", "fridge"))
    assert.equal(0, code, err)
    assert.truthy(out:find("trusted " .. ("cd"):rep(32) .. "  fridge", 1, true), out)
    stop(p)
  end)

  it("does not wait for another process's lock: it answers busy and keeps serving", function()
    local dir = setup()
    local p = serve(dir)
    C.expect(p, "serving ")
    local held = assert(peernet.trust.open(dir .. "/trust.list", { lock = true }))
    local a = ask(dir, { op = "trust", action = "add", key = ("ab"):rep(32) })
    assert.is_false(a.ok)
    assert.matches("another process is changing", a.message)
    held:close()
    a = ask(dir, { op = "trust", action = "add", key = ("ab"):rep(32) })
    assert.is_true(a.ok, a.message)
    stop(p)
  end)
end)

describe("trust add PREFIX", function()
  it("never trusts the one stranger a forged flood left matching: it shows the key and fingerprint", function()
    local dir = setup()
    local port = N.free_udp_port()
    H.write_file(dir .. "/host.lua", ("return { announce_port = %d, broadcast = \"127.255.255.255\", "
      .. "announce_v6 = false, mdns = false, netmon = false }\n"):format(port))
    local p = C.spawn(dd(dir, "serve", "--listen", "127.0.0.1:0", "--json"))
    C.expect(p, '"event":"serving"')
    local forged = N.keys()
    N.udp_send(port, { peernet.announce.encode(5555, forged:public()) })
    C.expect(p, '"key":"' .. forged:public_hex() .. '"')
    local code, out, err = C.run(dd(dir, "trust", "add", forged:public_hex():sub(1, 16), "--label", "fridge"))
    assert.equal(2, code)
    assert.truthy(err:find("is " .. forged:public_hex() .. ", fingerprint " .. forged:fingerprint(), 1, true), err)
    assert.truthy(err:find("trust the full key", 1, true), err)
    code, out = C.run(dd(dir, "trust", "ls"))
    assert.equal(0, code)
    assert.is_nil(out:find(forged:public_hex(), 1, true), out)
    stop(p)
  end)
end)

describe("serve --json", function()
  it("limits the discovered events a flood of forged announces causes", function()
    local dir = setup()
    local port = N.free_udp_port()
    local friend = N.keys()
    assert.equal(0, (C.run(dd(dir, "trust", "add", friend:public_hex()))))
    H.write_file(dir .. "/host.lua", ("return { announce_port = %d, broadcast = \"127.255.255.255\", "
      .. "announce_v6 = false, mdns = false, netmon = false }\n"):format(port))
    local p = C.spawn(dd(dir, "serve", "--listen", "127.0.0.1:0", "--json"))
    C.expect(p, '"event":"serving"')
    local flood = {}
    for i = 1, 200 do flood[i] = peernet.announce.encode(5555, N.keys():public()) end
    N.udp_send(port, flood)
    -- The sentinel: a trusted peer's announce, after the flood on the same socket.
    N.udp_send(port, { peernet.announce.encode(5556, friend:public()) })
    C.expect(p, '"event":"discovered","key":"' .. friend:public_hex() .. '"')
    local _, strangers = p.out:gsub('"trusted":false', "")
    assert.is_true(strangers <= 20, strangers .. " stranger events")
    stop(p)
  end)
end)

describe("config.lua", function()
  it("is followed by a running serve even when it is created after the start", function()
    local dir, key = setup()
    local hd = C.tmpdir() .. "/h"
    assert(uv.fs_mkdir(hd, tonumber("700", 8)))
    H.write_file(hd .. "/ex.lua", table.concat({
      'peernet.expose("ex.run", function()',
      '  local r, e = host.exec({ "/bin/echo", "granted" })',
      '  if not r then return "failed: " .. tostring(e) end',
      '  return r.stdout',
      'end)',
    }, "\n"))
    local p = serve(dir, "--handlers", hd)
    local port = C.expect(p, "serving %x+ on 127%.0%.0%.1:(%d+)")
    local kx = N.keys()
    local x = N.host(kx, { trust = { key } })
    assert.equal(0, (C.run(dd(dir, "trust", "add", kx:public_hex()))))
    N.connect(x, key, "127.0.0.1:" .. port)
    H.replace_file(dir .. "/config.lua", 'return { ["ex.lua"] = { exec = { "/bin/echo" } } }\n')
    local ok, v = N.call(x, key, "ex.run", nil)
    assert.is_true(ok, tostring(v))
    assert.equal("granted\n", v)
    N.close(x)
    stop(p)
  end)
end)

describe("check and config", function()
  it("check of one script named two ways checks it once", function()
    local dir = setup()
    local sub = C.tmpdir()
    H.write_file(sub .. "/one.lua", 'peernet.expose("one.a", function() return 1 end)')
    local code, out, err = C.run(dd(dir, "check", sub .. "/one.lua", sub .. "/./one.lua"))
    assert.equal(0, code, err)
    assert.matches("one%.lua: ok", out)
  end)

  it("config says running while a `run` host serves the data dir", function()
    local dir = setup()
    H.write_file(dir .. "/s.lua", 'peernet.expose("hi", function() return "hello" end)\nprint("exposed")')
    local p = C.spawn(dd(dir, "run", dir .. "/s.lua"))
    C.expect(p, "exposed\n")
    local code, out, err = C.run(dd(dir, "config", "--json"))
    assert.equal(0, code, err)
    assert.matches('"running":true', out)
    stop(p)
  end)
end)
