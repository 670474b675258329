-- What a second local process or user can do to a host through local files
-- and sockets (issue 11, items 13-16): hang up on the control socket or on
-- stdout, race trust list writers, leave writable handler scripts, send a
-- control request that decodes big. Real child processes throughout.
local uv = require "luv"
local peernet = require "peernet"
local N = require "support.net"
local C = require "support.cli"

local function dd(dir, ...) return { "--data-dir", dir, ... } end

local tmp = {}
local function tmpdir()
  local d = H.tmpdir()
  tmp[#tmp + 1] = d
  return d .. "/data" -- not created yet: init makes it
end

teardown(function()
  C.reap()
  for _ = 1, 10 do uv.run("nowait") end
  for _, d in ipairs(tmp) do H.rmdir(d) end
end)

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
-- (hang_up) or collects the whole answer. Returns the answer bytes.
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
