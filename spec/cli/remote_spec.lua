-- Working on a device from afar (issue 16, docs/remote.md): push scripts
-- and follow the log of a device, two real peernet-host processes, the
-- rights in the device's config.lua. Every wait is on what they print.
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

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local t = f:read("a")
  f:close()
  return t
end

local function expect_err(p, pattern)
  assert(N.wait(function() return p.err:find(pattern) ~= nil or p.code ~= nil end, 15000),
    "no '" .. pattern .. "' in stderr: " .. p.err)
  assert(p.err:find(pattern), "exited before '" .. pattern .. "': " .. p.err)
end

-- A device serving with rights for the laptop (peers = rights text or
-- nil), and a laptop that trusts it: device, laptop, the serve process, hd.
local function pair(peers)
  local base = C.tmpdir()
  local device, dkey = C.init(base .. "/device")
  local laptop, lkey = C.init(base .. "/laptop")
  local hd = device .. "/handlers" -- init made it
  write(hd .. "/base.lua", 'peernet.expose("base.v", function() return 1 end)\n' ..
    'peernet.expose("base.say", function(_, s) print("said " .. s) return true end)\n')
  assert(C.run(dd(device, "trust", "add", lkey, "--label", "laptop")) == 0)
  if peers then write(device .. "/config.lua", "return {\n  peers = " .. peers .. ",\n}\n") end
  local p = C.spawn(dd(device, "serve", "--no-discovery", "--listen", "127.0.0.1:0"))
  local port = C.expect(p, "serving %x+ on 127%.0%.0%.1:(%d+)")
  assert(C.run(dd(laptop, "trust", "add", dkey, "--label", "device", "--addr", "127.0.0.1:" .. port)) == 0)
  return { dir = device, hd = hd, p = p, key = dkey }, { dir = laptop, key = lkey, base = base }
end

local function stop(d)
  C.kill(d.p, "sigterm")
  C.wait(d.p)
end

local function src(l, name, text)
  local dir = l.base .. "/src"
  uv.fs_mkdir(dir, tonumber("700", 8))
  write(dir .. "/" .. name, text)
  return dir
end

describe("push", function()
  it("sends a script that loads, and its handler answers at once", function()
    local d, l = pair("{ laptop = { deploy = true } }")
    local dir = src(l, "lamp.lua", 'peernet.expose("lamp.on", function() return "on" end)\n')
    local code, out, err = C.run(dd(l.dir, "push", "device", dir))
    assert.equal(0, code, err)
    assert.matches("loaded lamp%.lua: lamp%.on", out)
    local c2, o2 = C.run(dd(l.dir, "call", "device", "lamp.on"))
    assert.equal(0, c2)
    assert.equal('"on"\n', o2)
    local st = assert(uv.fs_lstat(d.hd .. "/lamp.lua"))
    assert.equal(tonumber("600", 8), st.mode & tonumber("777", 8))
    expect_err(d.p, "push from " .. l.key:sub(1, 16) .. " %(laptop%): loaded lamp%.lua")
    stop(d)
  end)

  it("keeps the old version of a script with a syntax error and says file:line", function()
    local d, l = pair("{ laptop = { deploy = true } }")
    local before = read(d.hd .. "/base.lua")
    local dir = src(l, "base.lua", 'peernet.expose("base.v", function() return 2 end)\nlocal x = = 1\n')
    local code, out, err = C.run(dd(l.dir, "push", "device", dir .. "/base.lua"))
    assert.equal(1, code, out)
    assert.matches("failed base%.lua: base%.lua:2:", err)
    assert.equal(before, read(d.hd .. "/base.lua"))
    local c2, o2 = C.run(dd(l.dir, "call", "device", "base.v"))
    assert.equal(0, c2)
    assert.equal("1\n", o2)
    stop(d)
  end)

  it("is refused with forbidden to a key without the deploy right, and the device logs it", function()
    local d, l = pair("{ laptop = { logs = true } }")
    local dir = src(l, "lamp.lua", 'peernet.expose("lamp.on", function() return "on" end)\n')
    local code, _, err = C.run(dd(l.dir, "push", "device", dir))
    assert.equal(3, code)
    assert.matches("forbidden", err)
    assert.is_nil(uv.fs_stat(d.hd .. "/lamp.lua"))
    expect_err(d.p, "refused peernet%.deploy from " .. l.key:sub(1, 16) .. " %(laptop%): no deploy right")
    stop(d)
  end)

  it("is refused to every key when config.lua has no peers (default deny)", function()
    local d, l = pair(nil)
    local dir = src(l, "lamp.lua", 'peernet.expose("lamp.on", function() return "on" end)\n')
    local code, _, err = C.run(dd(l.dir, "push", "device", dir))
    assert.equal(3, code)
    assert.matches("forbidden", err)
    stop(d)
  end)

  it("--dry-run checks and writes nothing", function()
    local d, l = pair("{ laptop = { deploy = true } }")
    local dir = src(l, "lamp.lua", 'peernet.expose("lamp.on", function() return "on" end)\n')
    write(dir .. "/bad.lua", "local = 1\n")
    local code, out, err = C.run(dd(l.dir, "push", "device", dir, "--dry-run"))
    assert.equal(1, code)
    assert.matches("checked lamp%.lua", out)
    assert.matches("failed bad%.lua: bad%.lua:1:", err)
    assert.is_nil(uv.fs_stat(d.hd .. "/lamp.lua"))
    assert.is_nil(uv.fs_stat(d.hd .. "/bad.lua"))
    stop(d)
  end)

  it("--delete removes the device's scripts that are not sent", function()
    local d, l = pair("{ laptop = { deploy = true } }")
    local dir = src(l, "lamp.lua", 'peernet.expose("lamp.on", function() return "on" end)\n')
    local code, out, err = C.run(dd(l.dir, "push", "device", dir, "--delete"))
    assert.equal(0, code, err)
    assert.matches("loaded lamp%.lua", out)
    assert.matches("deleted base%.lua", out)
    assert.is_nil(uv.fs_stat(d.hd .. "/base.lua"))
    local c2 = C.run(dd(l.dir, "call", "device", "base.v"))
    assert.equal(3, c2) -- its handles are revoked
    stop(d)
  end)

  it("refuses names outside the handler directory (..), and a sub-directory right confines them", function()
    local d, l = pair('{ laptop = { deploy = "admin" } }')
    local code, _, err = C.run(dd(l.dir, "call", "device", "peernet.deploy",
      '{files = {{name = "admin/..lua", data = "x"}}}'))
    assert.equal(3, code)
    assert.matches("without '%.%.'", err)
    code, _, err = C.run(dd(l.dir, "call", "device", "peernet.deploy",
      '{files = {{name = "admin/../../evil.lua", data = "x"}}}'))
    assert.equal(3, code)
    assert.matches("only NAME%.lua or admin/NAME%.lua", err)
    assert.is_nil(uv.fs_stat(l.base .. "/evil.lua"))
    local dir = src(l, "lamp.lua", 'peernet.expose("lamp.on", function() return "on" end)\n')
    code, _, err = C.run(dd(l.dir, "push", "device", dir))
    assert.equal(3, code)
    assert.matches("may only deploy into admin/", err)
    uv.fs_mkdir(dir .. "/admin", tonumber("700", 8))
    write(dir .. "/admin/Lamp.lua", "return { on = function() return 1 end }\n")
    local out
    code, out, err = C.run(dd(l.dir, "push", "device", dir .. "/admin/Lamp.lua"))
    assert.equal(0, code, err)
    assert.matches("loaded admin/Lamp%.lua", out)
    stop(d)
  end)

  it("does not write through a symbolic link on the device", function()
    local d, l = pair("{ laptop = { deploy = true } }")
    write(l.base .. "/outside", "keep")
    assert(uv.fs_symlink(l.base .. "/outside", d.hd .. "/link.lua"))
    local dir = src(l, "link.lua", 'peernet.expose("l.x", function() return 1 end)\n')
    local code, _, err = C.run(dd(l.dir, "push", "device", dir .. "/link.lua"))
    assert.equal(1, code)
    assert.matches("not a regular file", err)
    assert.equal("keep", read(l.base .. "/outside"))
    stop(d)
  end)

  it("a script cannot expose a reserved peernet. handle", function()
    local d, l = pair("{ laptop = { deploy = true } }")
    local dir = src(l, "sneak.lua", 'peernet.expose("peernet.deploy", function() return 1 end)\n')
    local code, _, err = C.run(dd(l.dir, "push", "device", dir))
    assert.equal(1, code)
    assert.matches("host's own", err)
    stop(d)
  end)
end)

describe("logs", function()
  it("--follow receives a line the device's script prints", function()
    local d, l = pair("{ laptop = { logs = true } }")
    -- A third peer makes the script print: a second link of the laptop's
    -- own key would replace the follower's (one link per key).
    local other, okey = C.init(l.base .. "/other")
    assert(C.run(dd(d.dir, "trust", "add", okey)) == 0)
    assert(C.run(dd(other, "trust", "add", d.key, "--label", "device", "--addr",
      C.expect(d.p, "serving %x+ on (127%.0%.0%.1:%d+)"))) == 0)
    local f = C.spawn(dd(l.dir, "logs", "device", "--follow"))
    expect_err(f, "following device's log")
    assert.equal(0, (C.run(dd(other, "call", "device", "base.say", '"hello there"'))))
    C.expect(f, "%[info%] [^\n]*/base%.lua: said hello there")
    expect_err(d.p, "log followed by " .. l.key:sub(1, 16) .. " %(laptop%)")
    C.kill(f, "sigint") -- the follower goes: it ends cleanly, the device forgets it
    C.wait(f)
    assert.equal(0, f.code)
    C.expect(d.p, "\ndisconnected " .. l.key)
    local g = C.spawn(dd(l.dir, "logs", "device", "--follow"))
    expect_err(g, "following device's log")
    stop(d) -- the device goes: the follower ends cleanly too
    C.wait(g)
    assert.equal(0, g.code)
    assert.matches("closed", g.err)
  end)

  it("without --follow prints the recent lines and ends", function()
    local d, l = pair("{ laptop = { logs = true } }")
    assert.equal(0, (C.run(dd(l.dir, "call", "device", "base.say", '"earlier"'))))
    expect_err(d.p, "said earlier")
    local code, out = C.run(dd(l.dir, "logs", "device"))
    assert.equal(0, code)
    assert.matches("base%.lua: said earlier", out)
    stop(d)
  end)

  it("is refused with forbidden without the logs right", function()
    local d, l = pair("{ laptop = { deploy = true } }")
    local code, _, err = C.run(dd(l.dir, "logs", "device", "--follow"))
    assert.equal(3, code)
    assert.matches("forbidden", err)
    expect_err(d.p, "refused peernet%.logs from " .. l.key:sub(1, 16) .. " %(laptop%): no logs right")
    stop(d)
  end)
end)

describe("the peers rights in config.lua", function()
  it("an unknown right is an error naming file:line, and nothing is allowed", function()
    local d, l = pair("{\n    laptop = { deploy = true, root = true },\n  }")
    local code = C.run(dd(l.dir, "logs", "device"))
    assert.equal(3, code)
    expect_err(d.p, "config%.lua:3: peers%[\"laptop\"%]: unknown right \"root\" %(there are: deploy, logs, console%)")
    stop(d)
  end)
end)
