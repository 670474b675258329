-- run and check: trusted scripts and the handler script check for CI.
local uv = require "luv"
local peernet = require "peernet"
local control = require "peernet.control"
local format = require "peernet.format"
local datadir = require "peernet.cli.datadir"
local hosts = require "peernet.cli.hosts"
local ops = require "peernet.cli.ops"
local trustedit = require "peernet.cli.trustedit"
local output = require "peernet.cli.output"
local signals = require "peernet.cli.signals"

local EXIT, out, fail = output.EXIT, output.out, output.fail

local M = {}

local function need_runtime(what)
  if peernet.runtime then return true end
  return nil, what .. " needs the script runtime (peernet.runtime), which this build does not have"
end

M.run = {
  run = function(o, p, argv0)
    local script = o.pos[1]
    if not script then return fail("usage", "usage: peernet-host run SCRIPT.lua [ARGS...]") end
    local okr, re = need_runtime("run")
    if not okr then return fail("failure", re) end
    local chunk, le = loadfile(script, "t")
    if not chunk then return fail("failure", le) end
    local h, he = hosts.resident(p, { listen = o.listen or false, weak = true },
      " (use `peernet-host call`, or another --data-dir)")
    if not h then return fail("failure", he) end
    local code = EXIT.ok
    local rt, rte = peernet.runtime.new(h, {
      config = p.config, -- followed even when it is created later
      trust = p.trust,
      on_error = function(msg)
        io.stderr:write(tostring(msg), "\n")
        code = EXIT.failure
        uv.stop()
      end,
    })
    if not rt then
      h:close()
      return fail("failure", "script runtime: " .. tostring(rte))
    end
    -- Why a link closed is worth a line even here: the script's output is
    -- stdout, so it goes to stderr, as the host's own log lines do.
    h:on("disconnected", function(key, reason)
      io.stderr:write("peernet [info] disconnected ", key, " (", tostring(reason), ")\n")
    end)
    local info = { mode = "run", started = uv.now(), rt = rt,
      listen = o.listen and (o.listen:gsub(":%d+$", "") .. ":" .. h:port()) or nil }
    local server = control.serve(p.control, trustedit.wrap(ops.handler(h, p, info), h, p), { weak = true })
    -- `arg` as lua(1) sets it: the script at 0, its arguments from 1.
    local script_args = { [0] = script, [-1] = argv0 .. " run" }
    for i = 2, #o.pos do script_args[i - 1] = o.pos[i] end
    _G.arg = script_args
    -- One table: the script's global and its require "peernet" (rt:api()
    -- falls back to the module for peernet.host and the rest).
    _G.peernet = rt:api()
    package.loaded.peernet = _G.peernet
    -- The script's print() goes out a line at a time, as under lua(1).
    io.stdout:setvbuf("line")
    local stop_signals = signals.on_stop(true, function()
      if server then server.close() end
      rt:drain(signals.DRAIN_MS, function() uv.stop() end)
    end)
    rt:spawn(chunk, table.unpack(script_args, 1, #script_args))
    uv.run()
    stop_signals()
    if server then server.close() end
    rt:close()
    h:close()
    return code
  end,
}

-- ---- check ------------------------------------------------------------

-- The name a script has for config.lua's globs: its file name, or
-- admin/NAME for an admin module (as src/runtime/caps.c sees it).
local function script_name(file)
  local dir, base = file:match("([^/]*)/([^/]+)$")
  if not base then return file end
  if dir == "admin" then return "admin/" .. base end
  return base
end

-- fnmatch(3) without flags, as caps.c matches a script's name, in Lua patterns.
local function glob_match(glob, name)
  local pat = glob:gsub("[%^%$%(%)%%%.%+%-%*%?%[%]]", function(c)
    if c == "*" then return ".*" end
    if c == "?" then return "." end
    if c == "[" or c == "]" then return c end
    return "%" .. c
  end)
  local ok, m = pcall(string.match, name, "^" .. pat .. "$")
  return ok and m ~= nil
end

-- What config.lua grants (a table of glob -> {exec=, read=, write=}), or
-- nil: no file, or one the runtime refuses anyway (check reports that).
local function read_grants(config)
  if not config then return nil end
  local chunk = loadfile(config, "t", {})
  if not chunk then return nil end
  local ok, t = pcall(chunk)
  return ok and type(t) == "table" and t or nil
end

local function granted(grants, name, kind)
  for glob, entry in pairs(grants or {}) do
    if type(glob) == "string" and type(entry) == "table" and glob_match(glob, name)
      and type(entry[kind]) == "table" and #entry[kind] > 0 then
      return true
    end
  end
  return false
end

-- file:line: the host.* calls whose kind config.lua does not grant this
-- script: each would fail at run time with "not granted".
local function grant_warnings(file, grants, config)
  local warnings = {}
  local fh = io.open(file, "rb")
  if not fh then return warnings end
  local text = fh:read("a")
  fh:close()
  local seen = {}
  local line = 1
  for pos, kind in text:gmatch("()host%.(%a+)%s*%(") do
    if (kind == "exec" or kind == "read" or kind == "write") and not seen[kind] then
      seen[kind] = true
      if not granted(grants, script_name(file), kind) then
        local _, nl = text:sub(1, pos):gsub("\n", "")
        line = nl + 1
        warnings[#warnings + 1] = ("%s:%d: warning: host.%s is not granted to %s (%s has no %s = {...} for it)"):format(
          file, line, kind, script_name(file), config or "no config.lua", kind)
      end
    end
  end
  return warnings
end

-- Loads every script in one runtime, as serve would, so that a handle two
-- scripts expose is refused as it would be there (under serve, which one
-- is refused would depend on the order the directory lists them); reads
-- back what each exposes.
local function load_all(files, config)
  local kp = peernet.keys.generate()
  local h, he = peernet.host.new { secret = kp:secret(), listen = false }
  if not h then return nil, tostring(he) end
  local rt, re = peernet.runtime.new(h, { config = config, log = function() end })
  if not rt then
    h:close()
    return nil, tostring(re)
  end
  local results = {}
  for i, file in ipairs(files) do
    local admin = file:match("admin/[^/]+$") ~= nil
    local ok, le = rt:load_file(file, admin)
    results[i] = { file = file, ok = ok == true, error = (not ok) and tostring(le) or nil }
  end
  local handles = {}
  for _, sc in ipairs(rt:scripts()) do handles[sc.file] = sc.handles end
  rt:close()
  h:close()
  return results, handles
end

M.check = {
  run = function(o, p)
    if #o.pos == 0 then return fail("usage", "usage: peernet-host check SCRIPT.lua...") end
    local okr, re = need_runtime("check")
    if not okr then return fail("failure", re) end
    local config = datadir.config(p)
    -- One file named twice (chk/a.lua ./chk/a.lua) is checked once, not
    -- reported as a clash with itself.
    local files, seen = {}, {}
    for _, f in ipairs(o.pos) do
      local real = uv.fs_realpath(f) or f
      if not seen[real] then
        seen[real] = true
        files[#files + 1] = f
      end
    end
    local results, handles = load_all(files, config)
    if not results then return fail("failure", "script runtime: " .. tostring(handles)) end
    local grants = read_grants(config)
    local failed = 0
    for _, r in ipairs(results) do
      r.handles = handles[r.file] or {}
      r.warnings = r.ok and grant_warnings(r.file, grants, config) or {}
      if not r.ok then failed = failed + 1 end
    end
    if o.json then
      local shaped = {}
      for i, r in ipairs(results) do shaped[i] = format.shaped("script", r) end
      out(format.json { ok = failed == 0, scripts = shaped })
    else
      for _, r in ipairs(results) do
        if r.ok then out(r.file, ": ok") else io.stderr:write(tostring(r.error), "\n") end
        for _, w in ipairs(r.warnings) do io.stderr:write(w, "\n") end
      end
    end
    return failed == 0 and EXIT.ok or EXIT.failure
  end,
}

return M
