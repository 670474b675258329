-- Runs build/peernet-host as child processes (uv.spawn), so a spec can keep
-- its own loop (and its in-process hosts) turning while a child works.
local uv = require "luv"
local N = require "support.net"

local C = {}

C.bin = H.build_dir .. "/peernet-host"

local children = {}

-- The environment of the spec, minus PEERNET_HOME/XDG_DATA_HOME (specs
-- always pass --data-dir) plus extra.
local function environ(extra)
  local env = {}
  for k, v in pairs(uv.os_environ()) do
    if k ~= "PEERNET_HOME" and k ~= "XDG_DATA_HOME" then env[#env + 1] = k .. "=" .. v end
  end
  for k, v in pairs(extra or {}) do env[#env + 1] = k .. "=" .. v end
  return env
end

-- Starts peernet-host with args; returns a process object whose out/err
-- grow as the child writes and whose code is set when it exits.
function C.spawn(args, opts)
  opts = opts or {}
  local p = { out = "", err = "", open = 2 }
  local stdout, stderr = uv.new_pipe(false), uv.new_pipe(false)
  -- opts.stdin: the child reads a pipe the spec writes with C.type / C.eof.
  -- A plain OS pipe written synchronously: a line is in the pipe before the
  -- spec waits for its effect, and there is no handle left to close.
  local stdin, fds = nil, nil
  if opts.stdin then
    fds = assert(uv.pipe({ nonblock = false }, { nonblock = false }))
    stdin, p.stdin = fds.read, fds.write
  end
  -- opts.netns: run it inside that network namespace (ip netns exec)
  local file, argv = C.bin, args
  if opts.netns then
    file, argv = "ip", { "netns", "exec", opts.netns, C.bin }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
  end
  -- opts.prefix: a command that runs it (setpriv ..., script ...)
  if opts.prefix then
    file, argv = opts.prefix[1], {}
    for i = 2, #opts.prefix do argv[#argv + 1] = opts.prefix[i] end
    argv[#argv + 1] = C.bin
    for _, a in ipairs(args) do argv[#argv + 1] = a end
  end
  -- opts.argv: run this command line instead (C.tty)
  if opts.argv then file, argv = opts.argv[1], { table.unpack(opts.argv, 2) } end
  local handle, pid
  handle, pid = uv.spawn(file, { args = argv, stdio = { stdin, stdout, stderr }, env = environ(opts.env) },
    function(code, signal)
      p.code, p.signal = code, signal
      handle:close()
    end)
  if fds then uv.fs_close(fds.read) end
  assert(handle, pid)
  p.handle, p.pid = handle, pid
  local function reader(pipe, field)
    pipe:read_start(function(e, data)
      if data then
        p[field] = p[field] .. data
      else
        pipe:close()
        p.open = p.open - 1
      end
    end)
  end
  reader(stdout, "out")
  reader(stderr, "err")
  children[p] = true
  return p
end

function C.done(p) return p.code ~= nil and p.open == 0 end

-- Waits for p to exit (a safety bound, not a timing assertion).
function C.wait(p, ms)
  assert(N.wait(function() return C.done(p) end, ms or 30000),
    "peernet-host did not exit; stdout: " .. p.out .. "\nstderr: " .. p.err)
  children[p] = nil
  return p
end

-- Runs peernet-host to completion: code, stdout, stderr.
function C.run(args, opts)
  local p = C.wait(C.spawn(args, opts))
  return p.code, p.out, p.err
end

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs peernet-host on a terminal (a pty of script(1), util-linux): its
-- stdout and stderr are both the terminal. Returns code, what the
-- terminal showed (raw bytes, escapes included).
function C.tty(args, opts)
  local words = { shell_quote(C.bin) }
  for _, a in ipairs(args) do words[#words + 1] = shell_quote(a) end
  -- Without the sanitizer build's LD_PRELOAD: script(1) would report its
  -- own leaks; peernet-host carries its sanitizer itself.
  local p = C.wait(C.spawn({}, { env = opts and opts.env,
    argv = { "env", "-u", "LD_PRELOAD", "script", "-qefc", table.concat(words, " "), "/dev/null" } }))
  return p.code, p.out
end

-- Waits until the child's stdout matches pattern; returns the captures.
function C.expect(p, pattern, ms)
  local caps
  assert(N.wait(function()
    caps = table.pack(p.out:match(pattern))
    return caps[1] ~= nil or p.code ~= nil
  end, ms or 15000), "no '" .. pattern .. "' in stdout: " .. p.out .. "\nstderr: " .. p.err)
  assert(caps[1] ~= nil, "peernet-host exited (" .. tostring(p.code) .. ") before printing '" .. pattern
    .. "'; stdout: " .. p.out .. "\nstderr: " .. p.err)
  return table.unpack(caps, 1, caps.n)
end

-- Writes text to the child's stdin (spawned with {stdin = true}).
function C.type(p, text) assert(uv.fs_write(p.stdin, text)) end

-- Closes the child's stdin: it reads end of file.
function C.eof(p)
  if p.stdin then uv.fs_close(p.stdin) end
  p.stdin = nil
end

function C.kill(p, sig)
  if p.code == nil then p.handle:kill(sig or "sigterm") end
end

-- Kills every child still running (teardown).
function C.reap()
  for p in pairs(children) do
    C.eof(p)
    C.kill(p, "sigkill")
    N.wait(function() return C.done(p) end, 5000)
    children[p] = nil
  end
end

-- The arguments of a command on data dir dir: { "--data-dir", dir, ... }.
function C.dd(dir, ...) return { "--data-dir", dir, ... } end

-- A fresh temporary directory, removed by C.cleanup.
local tmpdirs = {}
function C.tmpdir()
  local d = H.tmpdir()
  tmpdirs[#tmpdirs + 1] = d
  return d
end

-- A spec file's teardown: kills what is still running, lets the closes
-- finish (before lua_close), removes the temporary directories.
function C.cleanup()
  C.reap()
  for _ = 1, 10 do uv.run("nowait") end
  for _, d in ipairs(tmpdirs) do H.rmdir(d) end
  tmpdirs = {}
end

-- A data dir with an identity: dir, key.
function C.init(dir)
  local code, out, err = C.run { "--data-dir", dir, "init" }
  assert(code == 0, err)
  return dir, out:match("identity (%x+)")
end

return C
