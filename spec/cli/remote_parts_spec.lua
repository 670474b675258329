local uv = require "luv"
-- The device's side of push and logs, part by part (the whole is
-- remote_spec.lua): names push accepts, the log feed's bound, and the
-- peers rights' checks.
local deploy = require "peernet.cli.deploy"
local logfeed = require "peernet.cli.logfeed"
local rights = require "peernet.cli.rights"

describe("push names", function()
  it("are NAME.lua or admin/NAME.lua, nothing outside the handler directory", function()
    for _, good in ipairs { "lamp.lua", "a-b_c.d.lua", "admin/Lamp.lua" } do
      assert.is_true(deploy.name_ok(good), good)
    end
    for _, bad in ipairs { "../x.lua", "/etc/x.lua", "admin/../x.lua", "a/b.lua", ".hidden.lua", "x.txt",
      "admin/a/b.lua", "..lua", "x..lua", "", "admin/" } do
      assert.is_string(deploy.name_ok(bad), bad)
    end
    assert.matches("only deploy into admin/", deploy.name_ok("lamp.lua", "admin"))
    -- a name is the peer's text: it reaches the log quoted, one line
    local why = deploy.name_ok("x\npeernet [error] FORGED LINE\27[2J.lua")
    assert.is_nil(why:find("[%c]"), why)
    assert.is_string(deploy.name_ok(("a"):rep(deploy.NAME_MAX) .. ".lua"))
    assert.is_true(deploy.name_ok("admin/Lamp.lua", "admin"))
  end)
end)

describe("a push", function()
  it("stops checking past its budget, so slow files cannot hold the device's loop", function()
    local dir = H.tmpdir()
    local saved = deploy.CHECK_BUDGET_MS
    deploy.CHECK_BUDGET_MS = 0 -- spent before the first file
    local report = deploy.push({ dir = dir, rt = {} },
      { files = { { name = "a.lua", data = "return 1" }, { name = "b.lua", data = "return 2" } } })
    deploy.CHECK_BUDGET_MS = saved
    assert.equal(2, #report)
    for _, r in ipairs(report) do
      assert.equal("failed", r.status)
      assert.matches("not checked", r.error)
      assert.is_nil(uv.fs_stat(dir .. "/" .. r.name))
    end
    H.rmdir(dir)
  end)
end)

describe("the log feed", function()
  local function feed(allowed)
    local sent, clock = {}, { t = 0, busy = false }
    local h = { send = function(_, key, handle, v)
      if clock.busy then return nil, "busy", "local" end -- the follower's link is backed up
      sent[#sent + 1] = { key = key, handle = handle, v = v }
      return true
    end }
    local f = logfeed.new(h, allowed or function() return true end, function() return clock.t end)
    return f, sent, clock
  end

  it("counts the lines a slow follower's link refused busy in the next marker", function()
    local f, sent, clock = feed()
    assert.is_true(f.follow("k", "info"))
    f.push("info", "line 1")
    clock.busy = true
    for i = 2, 6 do clock.t = clock.t + 100 f.push("info", "line " .. i) end
    clock.busy = false
    clock.t = clock.t + 100
    f.push("info", "line 7")
    assert.same({ "line 1", { dropped = 5 }, "line 7" },
      { sent[1].v.message, sent[2].v, sent[3].v.message })
  end)

  it("drops over its rate with a count, sent before the next line", function()
    local f, sent, clock = feed()
    assert.is_true(f.follow("k", "info"))
    for i = 1, logfeed.BURST + 7 do f.push("info", "line " .. i) end
    assert.equal(logfeed.BURST, #sent)
    assert.equal(logfeed.LINE_HANDLE, sent[1].handle)
    clock.t = 1000 -- a second later: RATE tokens back
    f.push("info", "after")
    assert.same({ dropped = 7 }, sent[logfeed.BURST + 1].v)
    assert.equal("after", sent[logfeed.BURST + 2].v.message)
  end)

  it("does not refill a follower's bucket when it follows again", function()
    local f, sent = feed()
    assert.is_true(f.follow("k", "info"))
    for i = 1, 1000 do
      if i % 100 == 0 then assert.is_true(f.follow("k", "info")) end
      f.push("info", "line " .. i)
    end
    assert.equal(logfeed.BURST, #sent) -- the clock stood still: no more than one burst
  end)

  it("keeps BACKLOG lines, filters by level, and forgets a follower that lost the right", function()
    local ok = true
    local f, sent = feed(function() return ok end)
    for i = 1, logfeed.BACKLOG + 5 do f.push(i % 2 == 0 and "debug" or "warn", "l" .. i) end
    assert.equal(logfeed.BACKLOG, #f.backlog("debug"))
    assert.equal("l6", f.backlog("debug")[1].message)
    for _, l in ipairs(f.backlog("warn")) do assert.equal("warn", l.level) end
    f.follow("k", "warn")
    f.push("debug", "quiet")
    assert.equal(0, #sent)
    ok = false
    f.push("warn", "loud")
    assert.equal(0, #sent)
    assert.is_nil(f.followers.k)
  end)

  it("follows at most FOLLOWERS_MAX keys", function()
    local f = feed()
    for i = 1, logfeed.FOLLOWERS_MAX do assert.is_true(f.follow("k" .. i, "info")) end
    assert.is_nil((f.follow("one more", "info")))
    assert.is_true(f.follow("k1", "debug")) -- a follower calling again
  end)
end)

describe("the peers rights", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -m 700 " .. dir))
  local path = dir .. "/config.lua"
  local function with(text)
    local f = assert(io.open(path, "w"))
    f:write(text)
    f:close()
    os.execute("chmod 600 " .. path)
    return rights.read(path)
  end
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("default to nothing", function()
    assert.same({}, with "return {}")
    assert.same({}, with 'return { ["*.lua"] = { exec = { "/bin/true" } } }')
  end)

  it("name file:line in each mistake", function()
    local t, e = with 'return {\n  peers = {\n    laptop = { deploy = "/etc" },\n  },\n}\n'
    assert.is_nil(t)
    assert.matches("config%.lua:3: peers%[\"laptop\"%]%.deploy must be true, false or \"admin\"", e)
    t, e = with 'return {\n  peers = {\n    laptop = { root = true },\n  },\n}\n'
    assert.matches("config%.lua:3: peers%[\"laptop\"%]: unknown right \"root\"", e)
    t, e = with 'return { peers = 1 }'
    assert.matches("config%.lua:1: peers must be a table", e)
    t, e = with 'return { peers = { laptop = { logs = "yes" } } }'
    assert.matches("logs must be true or false", e)
  end)

  it("refuse a config.lua others may write", function()
    with 'return { peers = { laptop = { logs = true } } }'
    os.execute("chmod 666 " .. path)
    local t, e = rights.read(path)
    assert.is_nil(t)
    assert.matches("is writable by others %(mode 0666%); run: chmod 600", e) -- config.lua's own wording
  end)
end)

describe("the log stream", function()
  local log = require "peernet.cli.log"
  it("writes a peer's text with its control characters escaped, one line whatever it holds", function()
    local forged = "lamp.lua\npeernet [error] FORGED\27[2J\r\0"
    local clean = log.clean(forged)
    assert.is_nil(clean:find("%c"), clean)
    assert.equal("lamp.lua\\x0apeernet [error] FORGED\\x1b[2J\\x0d\\x00", clean)
    -- what the host escaped already comes through as it was
    assert.equal("a \\x1b b", log.clean("a \\x1b b"))
  end)
end)
