-- Capabilities (src/runtime/caps.c, docs/scripts.md): what host.read,
-- host.write and host.exec promise beyond the grant itself. Links are
-- resolved before a path is compared, and a write never follows a link in
-- the last component; a child is killed at its timeout; each output keeps
-- its first MiB. Real files in a temp dir, real child processes.
local peernet = require "peernet"
local N = require "support.net"

local MiB = 1024 * 1024
local FILE_MAX = 16 * MiB -- bytes host.read returns

-- a runs dev.lua with the grants below; b calls it.
local function setup()
  local w = {}
  w.a, w.b, w.ka = N.pair()
  w.akey = w.ka:public_hex()
  w.dir = H.tmpdir()
  w.dev = H.sh("realpath " .. H.q(H.tmpdir())) -- grants compare resolved paths
  w.confdir = H.tmpdir()
  w.config = w.confdir .. "/config.lua"
  H.write_file(w.config, ([[
    return {
      ["dev.lua"] = { read = { %q, %q }, write = { %q }, exec = { "/bin/sh" } },
    }
  ]]):format(w.dev .. "/granted*", w.dev .. "/big", w.dev .. "/granted*"))
  w.rt = assert(peernet.runtime.new(w.a, {
    config = w.config,
    log = function(level, msg) N.logs[#N.logs + 1] = level .. " " .. msg end,
  }))
  -- Each handler answers what the script saw: pcall's flag and the first
  -- two results (a raised error's message, or the value and the reason).
  H.replace_file(w.dir .. "/dev.lua", [[
    local function try(f, ...)
      local ok, a, b = pcall(f, ...)
      return { ok = ok, a = a, b = b }
    end
    peernet.expose("read", function(_, p) return try(host.read, p) end)
    peernet.expose("read_size", function(_, p)
      local ok, a, b = pcall(host.read, p)
      return { ok = ok, a = ok and #a or a, b = b }
    end)
    peernet.expose("write", function(_, a) return try(host.write, a[1], a[2]) end)
    peernet.expose("exec", function(_, a)
      local r, err = host.exec(a.argv, { timeout = a.timeout })
      if not r then return { err = err } end
      return { status = r.status, signal = r.signal, stdout_len = #r.stdout, stderr_len = #r.stderr,
               head = r.stdout:sub(1, 5), truncated = r.truncated }
    end)
  ]])
  local report = w.rt:load_dir(w.dir)
  assert(report[1].ok, report[1].err)
  function w.call(name, args, copts)
    local ok, v = N.call(w.b, w.akey, name, args, copts)
    assert.is_true(ok, tostring(v))
    return v
  end
  function w.close()
    w.rt:close()
    N.close(w.a, w.b)
    for _, d in ipairs({ w.dir, w.dev, w.confdir }) do H.rmdir(d) end
  end
  return w
end

local function ln(target, link) assert(os.execute("ln -s " .. H.q(target) .. " " .. H.q(link))) end
local function is_link(path) return os.execute("test -L " .. H.q(path)) == true end

describe("host.read and host.write with symbolic links", function()
  local w
  before_each(function()
    w = setup()
    H.write_file(w.dev .. "/granted", "granted text")
    H.write_file(w.dev .. "/secret", "secret text")
  end)
  after_each(function() w.close() end)

  it("read checks the link's target: a granted name pointing outside the grant is refused", function()
    ln(w.dev .. "/secret", w.dev .. "/granted_link")
    local r = w.call("read", w.dev .. "/granted_link")
    assert.is_false(r.ok)
    assert.equal("host.read: not permitted: " .. w.dev .. "/secret is not granted to dev.lua in "
      .. w.config, r.a)
    -- a link whose target a grant reaches reads the target
    ln(w.dev .. "/granted", w.dev .. "/granted_alias")
    assert.same({ ok = true, a = "granted text" }, w.call("read", w.dev .. "/granted_alias"))
  end)

  it("write refuses a link in the last component, and leaves its target alone", function()
    ln(w.dev .. "/secret", w.dev .. "/granted_link")
    local r = w.call("write", { w.dev .. "/granted_link", "overwritten" })
    -- not raised: the script gets nil and the reason
    assert.is_true(r.ok)
    assert.is_nil(r.a)
    assert.equal(w.dev .. "/granted_link: Too many levels of symbolic links", r.b)
    assert.equal("secret text", H.read_file(w.dev .. "/secret"))
    assert.is_true(is_link(w.dev .. "/granted_link"))
    -- a dangling link creates nothing where it points
    ln(w.dev .. "/made_elsewhere", w.dev .. "/granted_dangling")
    r = w.call("write", { w.dev .. "/granted_dangling", "x" })
    assert.same({ true, nil }, { r.ok, r.a })
    assert.matches("granted_dangling: Too many levels of symbolic links", r.b)
    assert.is_nil(io.open(w.dev .. "/made_elsewhere"))
  end)

  it("write resolves links in the directory part before the grant is checked", function()
    local via = w.confdir .. "/via"
    ln(w.dev, via)
    assert.same({ ok = true, a = true }, w.call("write", { via .. "/granted", "through the link" }))
    assert.equal("through the link", H.read_file(w.dev .. "/granted"))
    -- the same directory link to an ungranted name is refused by its resolved path
    local r = w.call("write", { via .. "/secret", "x" })
    assert.is_false(r.ok)
    assert.equal("host.write: not permitted: " .. w.dev .. "/secret is not granted to dev.lua in "
      .. w.config, r.a)
    assert.equal("secret text", H.read_file(w.dev .. "/secret"))
  end)

  it("read refuses a file over 16 MiB instead of returning it", function()
    assert(os.execute("truncate -s " .. FILE_MAX .. " " .. H.q(w.dev .. "/big")))
    assert.same({ ok = true, a = FILE_MAX }, w.call("read_size", w.dev .. "/big"))
    assert(os.execute("truncate -s " .. (FILE_MAX + 1) .. " " .. H.q(w.dev .. "/big")))
    local r = w.call("read_size", w.dev .. "/big")
    assert.is_false(r.ok)
    assert.equal("host.read: " .. w.dev .. "/big is larger than " .. FILE_MAX .. " bytes", r.a)
  end)
end)

describe("host.exec", function()
  local w, pids
  before_each(function() w, pids = setup(), {} end)
  after_each(function()
    -- a child the runtime failed to kill must not outlive the spec
    for _, pid in ipairs(pids) do os.execute("kill -9 " .. pid .. " 2>/dev/null") end
    w.close()
  end)

  local function alive(pid) return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true end

  it("kills a child at its timeout, even one ignoring SIGTERM, and answers nil, 'timeout'", function()
    -- The child ignores SIGTERM, writes its pid, then becomes a sleep that
    -- would last 1000 s (exec keeps the pid and the ignored signal). A machine too busy to start it within the
    -- timeout kills it before it wrote the pid: then again with twice the
    -- timeout, until the pid file shows the child ran.
    local pidfile = w.dev .. "/pid"
    local argv = { "/bin/sh", "-c", 'trap "" TERM INT HUP; echo $$ > "$0"; exec /bin/sleep 1000', pidfile }
    local r, pid
    local timeout = 50
    repeat
      os.remove(pidfile)
      r = w.call("exec", { argv = argv, timeout = timeout }, { timeout = timeout + 30000 })
      local f = io.open(pidfile)
      if f then pid = tonumber(f:read("l")); f:close() end
      timeout = timeout * 2
    until pid or timeout > 10000
    assert.is_number(pid, "the child never wrote its pid")
    pids[#pids + 1] = pid
    assert.same({ err = "timeout" }, r)
    -- by the time the script has its answer the child is gone (killed and reaped)
    assert.is_false(alive(pid))
  end)

  it("returns a child's status and output when it ends before its timeout", function()
    local r = w.call("exec", { argv = { "/bin/sh", "-c", "printf hello; exit 3" }, timeout = 600000 })
    assert.same({ status = 3, signal = 0, stdout_len = 5, stderr_len = 0, head = "hello", truncated = false }, r)
  end)

  it("keeps the first MiB of each output and says truncated; the child runs to its end", function()
    local function spew(out, err)
      return w.call("exec", { argv = { "/bin/sh", "-c",
        'printf first; head -c "$0" /dev/zero; head -c "$1" /dev/zero >&2', tostring(out), tostring(err) } })
    end
    local function result(out_len, err_len, truncated)
      return { status = 0, signal = 0, stdout_len = out_len, stderr_len = err_len, head = "first",
               truncated = truncated }
    end
    -- exactly the cap: whole, not truncated
    assert.same(result(MiB, MiB, false), spew(MiB - 5, MiB))
    -- one byte over on stdout, then on stderr
    assert.same(result(MiB, 0, true), spew(MiB - 4, 0))
    assert.same(result(5, MiB, true), spew(0, MiB + 1))
    -- far over on both: the rest is read and dropped, so the child is not blocked
    assert.same(result(MiB, MiB, true), spew(4 * MiB, 4 * MiB))
  end)
end)
