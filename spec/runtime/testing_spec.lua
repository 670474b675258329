-- peernet.testing: a handler directory in a real sandboxed runtime with no
-- socket: calls as a key, authorize refusing, events, the virtual clock,
-- stubs for the scripts' own calls; and `peernet-host test`.
local T = require "peernet.testing"

local function dir_with(files)
  local dir = H.tmpdir()
  for name, text in pairs(files) do H.write_file(dir .. "/" .. name, text) end
  return dir
end

describe("peernet.testing", function()
  local d, dir
  after_each(function()
    if d then d:close() end
    d = nil
    H.rmdir(dir)
  end)

  it("calls a handle as a key: the value, nil + reason, forbidden and no_such_handle as a remote caller sees them", function()
    dir = dir_with { ["a.lua"] = [[
      peernet.expose("whoami", function(from) return from end)
      peernet.expose("refuse", function() return nil, peernet.atom("nope") end)
      peernet.expose("boss", function() return "yes" end,
        { authorize = function(from) return from == peernet.resolve("boss") end })
    ]] }
    local boss, other = T.key(), T.key()
    local trust = dir .. "/trust.list"
    H.write_file(trust, boss .. " boss\n")
    d = T.load(dir, { trust = trust })
    assert.equal(other, d:call(other, "whoami"))
    assert.same({ nil, "nope", "remote" }, { d:call(other, "refuse") })
    assert.same({ nil, "forbidden", "remote" }, { d:call(other, "boss") })
    assert.equal("yes", d:call(boss, "boss"))
    assert.same({ nil, "no_such_handle", "remote" }, { d:call(other, "absent") })
  end)

  it("delivers connected, disconnected (with its reason) and discovered to peernet.on", function()
    dir = dir_with { ["ev.lua"] = [[
      local seen = {}
      for _, ev in ipairs { "connected", "disconnected", "discovered" } do
        peernet.on(ev, function(key, why) seen[#seen + 1] = ev .. " " .. key:sub(1, 4) .. " " .. tostring(why) end)
      end
      peernet.expose("seen", function() return seen end)
    ]] }
    d = T.load(dir)
    local k = T.key()
    d:event("connected", k)
    d:event("disconnected", k, "peer closed the connection")
    d:event("discovered", k)
    local p = k:sub(1, 4)
    assert.same({ "connected " .. p .. " nil", "disconnected " .. p .. " peer closed the connection",
      "discovered " .. p .. " nil" }, d:call(k, "seen"))
  end)

  it("moves a virtual clock: after, every and sleep fire in order, only when advanced", function()
    dir = dir_with { ["clock.lua"] = [[
      local log = {}
      local function note(s) log[#log + 1] = s end
      peernet.after(25, function() note("after25") end)
      local ev = peernet.every(20, function() note("every") end)
      peernet.after(70, function() ev:cancel() end)
      peernet.after(10, function() note("sleep-start"); peernet.sleep(30); note("sleep-end") end)
      peernet.expose("log", function() return log end)
      peernet.expose("wait", function(from, ms) peernet.sleep(ms); return "woke" end)
    ]] }
    d = T.load(dir)
    local k = T.key()
    assert.same({}, d:call(k, "log"))
    assert.equal(0, d:now())
    -- 10 sleep-start, 20 every, 25 after, 40 sleep-end (armed at 10), 40 every (re-armed at 20)
    assert.equal(5, d:advance(45))
    assert.same({ "sleep-start", "every", "after25", "sleep-end", "every" }, d:call(k, "log"))
    d:advance(1000) -- every at 60, cancelled at 70
    assert.same({ "sleep-start", "every", "after25", "sleep-end", "every", "every" }, d:call(k, "log"))
    assert.equal(1045, d:now())
    local p = d:start(k, "wait", 500)
    assert.is_false(p:done())
    local ok, err = pcall(d.call, d, k, "wait", 500)
    assert.is_false(ok)
    assert.matches("still waiting", err)
    d:advance(499)
    assert.is_false(p:done())
    d:advance(1)
    assert.equal("woke", p:result())
  end)

  it("answers the scripts' calls and sends with stubs and records them; no stub reads not_connected", function()
    dir = dir_with { ["out.lua"] = [[
      peernet.expose("relay", function(from, a)
        local v, reason, kind = peernet.call(a.peer, "temp", { unit = "C" })
        peernet.send(a.peer, "note", "asked")
        return { v = v, reason = reason, kind = kind }
      end)
    ]] }
    d = T.load(dir)
    local k, sensor, down, slow = T.key(), T.key(), T.key(), T.key()
    d:stub(sensor, "temp", function(args) return args.unit == "C" and 21 or 70 end)
    d:stub(down, "temp", function() return nil, "broken" end)
    d:stub(slow, "temp", T.timeout)
    assert.same({ v = 21 }, d:call(k, "relay", { peer = sensor }))
    assert.same({ reason = "broken", kind = "remote" }, d:call(k, "relay", { peer = down }))
    assert.same({ reason = "timeout", kind = "timeout" }, d:call(k, "relay", { peer = slow }))
    assert.same({ reason = "not_connected", kind = "local" }, d:call(k, "relay", { peer = k }))
    local to = d:sent_to(sensor)
    assert.equal(2, #to)
    assert.same({ "call", "temp", { unit = "C" } }, { to[1].what, to[1].name, to[1].args })
    assert.same({ "send", "note", "asked" }, { to[2].what, to[2].name, to[2].args })
  end)

  it("opens no socket: no listener, no connection, no announce; peernet.connect reaches stubs only", function()
    -- the sockets this process holds, from /proc (Linux)
    local function sockets()
      local n = 0
      local p = io.popen("ls -l /proc/" .. H.sh("echo $PPID") .. "/fd 2>/dev/null")
      for line in p:lines() do
        if line:find("socket:", 1, true) then n = n + 1 end
      end
      p:close()
      return n
    end
    local before = sockets()
    dir = dir_with { ["a.lua"] = [[
      peernet.expose("x", function() return 1 end)
      peernet.expose("dial", function(from, a) return { peernet.connect(a.peer, "192.0.2.1:4040") } end)
    ]] }
    d = T.load(dir)
    local k, stubbed = T.key(), T.key()
    d:stub(stubbed, "temp", 1)
    assert.equal(1, d:call(k, "x"))
    assert.same({ true }, d:call(k, "dial", { peer = stubbed }))
    assert.same({ nil, "not_connected", "local" }, d:call(k, "dial", { peer = k }))
    assert.same({ "connect", "192.0.2.1:4040" }, { d:sent_to(stubbed)[1].what, d:sent_to(stubbed)[1].name })
    assert.equal(before, sockets())
    local st = d.host:stats()
    assert.equal(0, st.connections)
    assert.equal(0, st.accepted)
    assert.equal(0, st.announces_sent)
    assert.equal(0, st.mdns_out)
    assert.equal(0, d.host:port())
  end)

  it("bounds a script that never waits for the clock: an error, not a hang", function()
    dir = dir_with { ["loop.lua"] = [[
      peernet.expose("spin", function() while true do peernet.sleep(0) end end)
      peernet.expose("ask", function(from, a) while true do peernet.call(a.peer, "temp", {}) end end)
    ]] }
    d = T.load(dir)
    local k = T.key()
    d:stub(k, "temp", 21)
    assert.is_false(d:start(k, "spin"):done())
    local ok, err = pcall(d.advance, d, 1)
    assert.is_false(ok)
    assert.matches("over %d+ timers fired", err)
    ok, err = pcall(d.start, d, k, "ask", { peer = k })
    assert.is_false(ok)
    assert.matches("still running after %d+ resumes", err)
  end)

  it("refuses a directory whose script does not load, with file:line", function()
    dir = dir_with { ["bad.lua"] = "peernet.expose(\n" }
    local ok, err = pcall(T.load, dir)
    assert.is_false(ok)
    assert.matches("bad%.lua:%d+:", err)
  end)
end)

describe("peernet-host test", function()
  it("runs a spec dir: a summary line, file:line of the failure, exit 1", function()
    local dir = H.tmpdir()
    assert(os.execute("mkdir " .. H.q(dir .. "/handlers") .. " " .. H.q(dir .. "/spec")))
    H.write_file(dir .. "/handlers/h.lua", [[peernet.expose("two", function() return 2 end)]])
    H.write_file(dir .. "/spec/good_spec.lua", [[
local T = require "peernet.testing"
describe("h", function()
  it("answers two", function()
    local d = T.load("]] .. dir .. [[/handlers")
    assert.equal(2, d:call(T.key(), "two"))
    d:close()
  end)
end)
]])
    H.write_file(dir .. "/spec/bad_spec.lua", [[
describe("bad", function()
  it("fails", function()
    assert.equal(3, 2)
  end)
end)
]])
    local out = H.sh("cd " .. H.q(dir) .. " && " .. H.q(H.build_dir .. "/peernet-host") .. " test 2>&1; echo rc=$?")
    assert.matches("1 passed, 1 failed %(2 files%)", out)
    assert.matches("FAIL spec/bad_spec%.lua:3: bad fails", out)
    assert.matches("expected 3, got 2", out)
    assert.matches("rc=1\n?$", out)
    local json = require "dkjson"
    local j = json.decode((H.sh("cd " .. H.q(dir) .. " && " .. H.q(H.build_dir .. "/peernet-host")
      .. " test --json 2>/dev/null")))
    assert.same({ ok = false, passed = 1, failed = 1, pending = 0, files = 2,
      failures = { { at = "spec/bad_spec.lua:3", test = "bad fails", message = "expected 3, got 2" } } }, j)
    H.write_file(dir .. "/spec/bad_spec.lua", "")
    out = H.sh(H.q(H.build_dir .. "/peernet-host") .. " test " .. H.q(dir .. "/spec") .. " 2>&1; echo rc=$?")
    assert.matches("1 passed, 0 failed", out)
    assert.matches("rc=0", out)
    H.rmdir(dir)
  end)

  it("keeps spec files apart: a replaced assert or an os.exit does not reach the next file", function()
    local dir = H.tmpdir()
    H.write_file(dir .. "/a_spec.lua", 'assert.equal = function() end\ndescribe("a", function() it("exits", function() os.exit(0) end) end)\n')
    H.write_file(dir .. "/b_spec.lua", 'describe("b", function() it("fails", function() assert.equal(3, 2) end) end)\n')
    local out = H.sh(H.q(H.build_dir .. "/peernet-host") .. " test " .. H.q(dir) .. " 2>&1; echo rc=$?")
    assert.matches("0 passed, 2 failed %(2 files%)", out)
    assert.matches("may not call os.exit", out)
    assert.matches("expected 3, got 2", out)
    assert.matches("rc=1", out)
    H.rmdir(dir)
  end)

  it("takes SPEC_DIR as a name only: `test -delete` or `test '!'` removes and runs nothing", function()
    local dir = H.tmpdir()
    assert(os.execute("mkdir " .. H.q(dir .. "/sub")))
    H.write_file(dir .. "/keep.txt", "1")
    H.write_file(dir .. "/sub/keep2.txt", "2")
    H.write_file(dir .. "/foo.lua", 'print("RAN foo.lua")')
    for _, arg in ipairs { "-delete", "!", "-exec" } do
      local out = H.sh("cd " .. H.q(dir) .. " && " .. H.q(H.build_dir .. "/peernet-host") .. " test -- "
        .. H.q(arg) .. " 2>&1; echo rc=$?")
      assert.is_nil(out:find("RAN foo.lua", 1, true), out)
      assert.matches("rc=1", out)
      assert.equal("1", H.read_file(dir .. "/keep.txt"))
      assert.equal("2", H.read_file(dir .. "/sub/keep2.txt"))
    end
    H.rmdir(dir)
  end)
end)
