-- What a second local process or user can do to a host through local files
-- and sockets (issue 11, items 13-16): hang up on the control socket or on
-- stdout, race trust list writers, leave writable handler scripts, send a
-- control request that decodes big. Real child processes throughout.
local uv = require "luv"
local peernet = require "peernet"
local N = require "support.net"
local C = require "support.cli"

local dd = C.dd

-- A data dir path, not created yet: init makes it.
local function tmpdir() return C.tmpdir() .. "/data" end

teardown(C.cleanup)

-- Runs a program with stdout a pipe nobody reads (its read end closed
-- first, so every write to it fails with EPIPE). Returns code, signal, stderr.
local function run_unread_stdout(file, args)
  local fds = assert(uv.pipe({ nonblock = false }, { nonblock = false }))
  uv.fs_close(fds.read)
  local errp = uv.new_pipe(false)
  local res = { err = "", open = 1 }
  local handle
  handle = assert(uv.spawn(file, { args = args, stdio = { nil, fds.write, errp } }, function(code, sig)
    res.code, res.signal = code, sig
    handle:close()
  end))
  uv.fs_close(fds.write)
  errp:read_start(function(_, d)
    if d then res.err = res.err .. d else errp:close() res.open = 0 end
  end)
  assert(N.wait(function() return res.code ~= nil and res.open == 0 end, 30000), "child did not exit")
  return res.code, res.signal, res.err
end

-- A control-socket request frame as the CLI sends it.
local function control_frame(req)
  return string.pack(">s4", assert(peernet.etf.encode(req)))
end

-- Connects to the control socket, writes data, and either hangs up at once
-- (hang_up) or collects one whole answer frame (or what came before the
-- host closed). Returns the answer bytes.
local function control_raw(sock, data, hang_up)
  local pipe = uv.new_pipe(false)
  local got, closed = "", false
  pipe:connect(sock, function(e)
    assert.is_nil(e)
    pipe:write(data)
    if hang_up then
      pipe:close()
      closed = true
      return
    end
    pipe:read_start(function(_, d)
      if d then got = got .. d else closed = true end
      if #got >= 4 and #got >= 4 + string.unpack(">I4", got) then closed = true end
    end)
  end)
  assert.is_true(N.wait(function() return closed end))
  if not pipe:is_closing() then pipe:close() end
  return got
end

describe("SIGPIPE", function()
  local dir, a
  setup(function()
    dir = C.init(tmpdir())
    a = C.spawn(dd(dir, "serve", "--no-discovery", "--listen", "127.0.0.1:0"))
    C.expect(a, "control socket ")
  end)
  teardown(function() if a then C.kill(a) end end)

  it("a control client that sends status and hangs up does not stop the host", function()
    for _ = 1, 3 do control_raw(dir .. "/control.sock", control_frame { op = "status" }, true) end
    -- The host answers the next client as before.
    local code, out, err = C.run(dd(dir, "status", "--json"))
    assert.equal(0, code, err)
    assert.truthy(out:find('"mode"', 1, true), out)
    assert.is_nil(a.code)
    assert.is_nil(a.signal ~= 0 and a.signal or nil)
  end)

  it("status into a closed stdout exits 1 with a message instead of dying by SIGPIPE", function()
    local code, sig, err = run_unread_stdout(C.bin, dd(dir, "status"))
    assert.equal(0, sig, "killed by signal " .. tostring(sig))
    assert.equal(1, code)
    assert.truthy(err:find("standard output", 1, true), err)
  end)

  it("the peernet module keeps plain lua5.4 alive when a write hits a closed pipe", function()
    local lua = H.sh("command -v lua5.4")
    local code, sig, err = run_unread_stdout(lua, { "-e",
      "package.cpath = " .. ("%q"):format(H.build_dir .. "/?.so;" .. package.cpath) .. "\n"
        .. "require 'peernet'\n"
        .. "local ok, e = io.stdout:write(('x'):rep(100000)) io.stdout:flush()\n"
        .. "io.stderr:write('survived\\n')" })
    assert.equal(0, sig, "killed by signal " .. tostring(sig))
    assert.equal(0, code, err)
    assert.truthy(err:find("survived", 1, true), err)
  end)
end)

-- Resident memory of a process, in KiB (Linux /proc).
local function rss_kib(pid)
  local f = assert(io.open("/proc/" .. pid .. "/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

describe("control socket decode bound", function()
  local dir, a
  setup(function()
    dir = C.init(tmpdir())
    a = C.spawn(dd(dir, "serve", "--no-discovery", "--listen", "127.0.0.1:0"))
    C.expect(a, "control socket ")
  end)
  teardown(function() if a then C.kill(a) end end)

  it("a request of 2 million empty lists is refused before it is built; the host keeps serving", function()
    -- {op = "status", x = [[], [], ...]}: a map of two pairs, the list by hand.
    local n = 2000000
    local list = "\108" .. string.pack(">I4", n) .. ("\106"):rep(n) .. "\106"
    local term = "\131\116" .. string.pack(">I4", 2)
      .. "\109" .. string.pack(">s4", "op") .. "\109" .. string.pack(">s4", "status")
      .. "\109" .. string.pack(">s4", "x") .. list
    assert.is_true(#term <= 2 * 1024 * 1024)
    local got = control_raw(dir .. "/control.sock", string.pack(">s4", term))
    assert.is_true(#got > 4, "no answer")
    local answer = assert(peernet.etf.decode(got:sub(5)))
    assert.is_false(answer.ok)
    assert.equal("bad_request", answer.kind)
    assert.truthy(tostring(answer.message):find("terms", 1, true), answer.message)
    -- Not built: the host's resident memory stays far below the ~160 MB
    -- that 2 million Lua tables take (a bound, not a timing).
    assert.is_true(rss_kib(a.pid) < 64 * 1024, "VmRSS " .. rss_kib(a.pid) .. " KiB")
    local code, _, err = C.run(dd(dir, "status"))
    assert.equal(0, code, err)
    assert.is_nil(a.code)
  end)

  it("requests sent together are answered in order; a bad frame header is answered and closes", function()
    -- Connects, writes data, reads until the host closes (or n answers
    -- came); returns the decoded answers.
    local function exchange(data, n)
      local pipe = uv.new_pipe(false)
      local r = peernet.frame.reader(16 * 1024 * 1024)
      local answers, closed = {}, false
      pipe:connect(dir .. "/control.sock", function(e)
        assert.is_nil(e)
        pipe:write(data)
        pipe:read_start(function(_, d)
          if not d then closed = true return end
          for _, body in ipairs(assert(r:feed(d))) do answers[#answers + 1] = assert(peernet.etf.decode(body)) end
        end)
      end)
      assert.is_true(N.wait(function() return closed or (n and #answers >= n) end))
      pipe:close()
      return answers, closed
    end
    local answers = exchange(control_frame { op = "status" } .. control_frame { op = "nope" }
      .. control_frame { op = "peers" }, 3)
    assert.equal(3, #answers)
    assert.is_true(answers[1].ok)
    assert.is_table(answers[1].status)
    assert.same({ false, "bad_request", "unknown op nope" }, { answers[2].ok, answers[2].kind, answers[2].message })
    assert.is_true(answers[3].ok)
    assert.is_table(answers[3].peers)
    -- A chunk with a header over the cap is refused whole, as the host's
    -- links refuse it (peernet.frame): one answer, then the close.
    local closed
    answers, closed = exchange(control_frame { op = "status" } .. string.pack(">I4", 0xffffffff))
    assert.is_true(closed)
    assert.equal(1, #answers)
    assert.same({ false, "bad_request" }, { answers[1].ok, answers[1].kind })
    assert.matches("exceeds the cap", answers[1].message)
    assert.is_nil(a.code)
  end)

  it("peernet.etf.decode takes a terms bound and names it when refusing", function()
    local bytes = assert(peernet.etf.encode { 1, 2, { 3, 4 } })
    assert.same({ 1, 2, { 3, 4 } }, peernet.etf.decode(bytes, { terms = 6 }))
    local v, e = peernet.etf.decode(bytes, { terms = 5 })
    assert.is_nil(v)
    assert.truthy(e:find("more than 5 terms", 1, true), e)
  end)
end)

-- The process state letter of pid ("T" when stopped), or nil once it is gone.
local function proc_state(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s:match("^%d+ %b() (%a)")
end

local function temps_in(dir)
  local names = {}
  for name in H.names_in(dir):gmatch("[^\n]+") do
    if name:match("^trust%.list%.tmp%-") then names[#names + 1] = name end
  end
  return names
end

describe("trust list writers", function()
  it("100 concurrent trust add processes all land in the file", function()
    local dir = C.init(tmpdir())
    local keys, procs = {}, {}
    for i = 1, 100 do
      keys[i] = N.keys():public_hex()
      procs[i] = C.spawn(dd(dir, "trust", "add", keys[i], "--label", "p" .. i))
    end
    for i = 1, 100 do
      C.wait(procs[i], 60000)
      assert.equal(0, procs[i].code, procs[i].err)
    end
    local t = assert(peernet.trust.open(dir .. "/trust.list"))
    assert.equal(100, t:count())
    for i = 1, 100 do assert.equal(keys[i], (t:get("p" .. i) or {}).key, "p" .. i .. " is missing") end
    assert.same({}, temps_in(dir))
  end)

  it("a store that read before another writer saved refuses to write its stale copy", function()
    local dir = C.init(tmpdir())
    local path = dir .. "/trust.list"
    local k1, k2 = N.keys():public_hex(), N.keys():public_hex()
    local mine = assert(peernet.trust.open(path))
    assert.equal(0, (C.run(dd(dir, "trust", "add", k1))))
    assert(mine:add(k2))
    local ok, e = mine:save()
    assert.is_nil(ok)
    assert.truthy(e:find("changed on disk since it was read", 1, true), e)
    local again = assert(peernet.trust.open(path, { lock = true }))
    assert.equal(k1, again:get(k1).key)
    assert(again:add(k2))
    assert(again:save())
    again:close()
    assert.equal(2, assert(peernet.trust.open(path)):count())
  end)

  it("a writer killed mid-write holds others off only while it lives, and its temp file is cleaned up", function()
    local dir = C.init(tmpdir())
    local k1, k2, k3 = N.keys():public_hex(), N.keys():public_hex(), N.keys():public_hex()
    -- The test hook stops the writer (SIGSTOP) once its temp file is written.
    local w = C.spawn(dd(dir, "trust", "add", k1), { env = { PEERNET_TEST_STOP_AFTER_TEMP = "trust.list" } })
    assert.is_true(N.wait(function() return proc_state(w.pid) == "T" or w.code ~= nil end))
    assert.equal("T", proc_state(w.pid), "the writer did not stop mid-write: " .. w.err)
    assert.equal(1, #temps_in(dir))
    -- Meanwhile another writer waits for the lock, within its bound.
    local code, _, err = C.run(dd(dir, "trust", "add", k2), { env = { PEERNET_LOCK_WAIT_MS = "100" } })
    assert.equal(1, code)
    assert.truthy(err:find("another process is changing", 1, true), err)
    C.kill(w, "sigkill")
    C.wait(w)
    assert.equal(1, #temps_in(dir)) -- what the killed writer left
    code, _, err = C.run(dd(dir, "trust", "add", k3))
    assert.equal(0, code, err)
    assert.same({}, temps_in(dir))
    local t = assert(peernet.trust.open(dir .. "/trust.list"))
    assert.is_nil(t:get(k1))
    assert.is_nil(t:get(k2))
    assert.equal(k3, t:get(k3).key)
  end)
end)

describe("handler scripts, their directory and config.lua must be the host user's alone", function()
  if not peernet.runtime then
    pending("needs peernet.runtime")
    return
  end
  local dir, hd
  local good = 'peernet.expose("lamp.on", function() return true end)\n'
  before_each(function()
    dir = C.init(tmpdir())
    hd = dir .. "/handlers"
    assert(os.execute("mkdir -p " .. H.q(hd) .. " && chmod 755 " .. H.q(hd)))
  end)

  it("a 0755 directory with a 0644 script and a 0644 config.lua loads", function()
    H.write_file(hd .. "/lamp.lua", good, "644")
    H.write_file(dir .. "/config.lua", "return {}\n", "644")
    local code, out, err = C.run(dd(dir, "check", hd .. "/lamp.lua"))
    assert.equal(0, code, err)
    assert.matches("lamp%.lua: ok", out)
    local p = C.spawn(dd(dir, "serve", "--no-discovery", "--listen", "127.0.0.1:0", "--handlers", hd))
    C.expect(p, "loaded .*lamp%.lua: lamp%.on")
    C.kill(p, "sigterm")
    C.wait(p)
  end)

  it("a script others can write (0666) is refused by check and by serve, with the chmod to run", function()
    H.write_file(hd .. "/lamp.lua", good, "666")
    local code, _, err = C.run(dd(dir, "check", hd .. "/lamp.lua"))
    assert.equal(1, code)
    assert.truthy(err:find("writable by others (mode 0666); run: chmod 600 " .. hd .. "/lamp.lua", 1, true), err)
    local p = C.spawn(dd(dir, "serve", "--no-discovery", "--listen", "127.0.0.1:0", "--handlers", hd))
    C.expect(p, "serving ")
    assert.is_true(N.wait(function() return p.err:find("handler script failed: .*writable by others") ~= nil end), p.err)
    assert.is_nil(p.out:find("loaded", 1, true))
    local _, before = C.run(dd(dir, "status", "--json"))
    assert.is_nil(before:find("lamp.lua", 1, true), before)
    -- Fixing the mode (the content is unchanged) loads it on the next rescan.
    assert(os.execute("chmod 644 " .. H.q(hd .. "/lamp.lua")))
    local loaded = false
    for _ = 1, 500 do -- each try is one status round trip; a bound, not a clock
      local _, sout = C.run(dd(dir, "status", "--json"))
      if sout:find("lamp.lua", 1, true) then loaded = true break end
    end
    assert.is_true(loaded, p.err)
    C.kill(p, "sigterm")
    C.wait(p)
  end)

  it("a script in a directory others can write (0777) is refused", function()
    H.write_file(hd .. "/lamp.lua", good, "644")
    assert(os.execute("chmod 777 " .. H.q(hd)))
    local code, _, err = C.run(dd(dir, "check", hd .. "/lamp.lua"))
    assert.equal(1, code)
    assert.truthy(err:find("directory " .. hd .. " is writable by others (mode 0777); run: chmod 700 " .. hd, 1, true), err)
    local p = C.spawn(dd(dir, "serve", "--no-discovery", "--listen", "127.0.0.1:0", "--handlers", hd, "--json"))
    C.expect(p, '"event":%s*"serving"')
    assert.truthy(p.out:find('"event":%s*"failed"'), p.out)
    assert.is_nil(p.out:find('"event":%s*"loaded"'))
    C.kill(p, "sigterm")
    C.wait(p)
  end)

  it("a script in a shared sticky directory (1777, like /tmp) is refused with advice to move it", function()
    H.write_file(hd .. "/lamp.lua", good, "644")
    assert(os.execute("chmod 1777 " .. H.q(hd)))
    local code, _, err = C.run(dd(dir, "check", hd .. "/lamp.lua"))
    assert.equal(1, code)
    assert.truthy(err:find("directory " .. hd .. " is shared (mode 1777); move the files", 1, true), err)
  end)

  it("a config.lua others can write (0666) refuses every script", function()
    H.write_file(hd .. "/lamp.lua", good, "644")
    H.write_file(dir .. "/config.lua", "return {}\n", "666")
    local code, _, err = C.run(dd(dir, "check", hd .. "/lamp.lua"))
    assert.equal(1, code)
    assert.truthy(err:find(dir .. "/config.lua is writable by others (mode 0666); run: chmod 600 " .. dir .. "/config.lua", 1, true), err)
  end)
end)
