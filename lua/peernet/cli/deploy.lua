-- The device's side of `peernet-host push` (docs/remote.md): the reserved
-- handle peernet.deploy, served by serve to keys with the deploy right.
-- Each file is checked in a sandbox of its own first (as `check` does),
-- then written atomically into the handler directory (a staging copy
-- under .push/ with the same name, fsync, rename, fsync of the
-- directory) and the directory is scanned at once, so the answer says
-- what each file loaded as. A file that fails keeps the old one serving.
local uv = require "luv"
local peernet = require "peernet"
local format = require "peernet.format"

local M = {}

M.HANDLE = "peernet.deploy"
M.FILES_MAX = 64                 -- files in one push
M.FILE_MAX = 256 * 1024          -- bytes of one file
M.TOTAL_MAX = 768 * 1024         -- bytes of a push: one call, under the 1 MiB frame
M.STAGING = ".push"              -- a dot name: the handler directory's scan skips it
M.NAME_MAX = 128                 -- bytes of a file's name, admin/ included
M.CHECK_BUDGET_MS = 3000         -- checking one push holds the loop at most this (plus one slice)
local MODE = tonumber("600", 8)  -- a script as docs/scripts.md "Who may change the code" wants it
local DIR_MODE = tonumber("700", 8)

-- "x.lua" or "admin/x.lua"; sub: the right's sub-directory (nil: any).
-- Returns true or why not.
function M.name_ok(name, sub)
  if type(name) ~= "string" then return "a name must be text" end
  if #name > M.NAME_MAX then return ("a name of %d bytes (at most %d)"):format(#name, M.NAME_MAX) end
  -- Shown quoted and escaped: a name is the peer's text, and reaches the
  -- device's log and every follower of it.
  local shown = format.quote(name)
  local dir, base = name:match("^([^/]+)/([^/]+)$")
  if not dir then base = name end
  if (dir and dir ~= "admin") or base:find("/") then
    return shown .. ": only NAME.lua or admin/NAME.lua (the directories the host loads)"
  end
  if not base:match("^[%w_-][%w_.-]*%.lua$") or base:find("..", 1, true) then
    return shown .. ": a name is [A-Za-z0-9_.-] ending in .lua, not starting with a dot, without '..'"
  end
  if sub and dir ~= sub then return shown .. ": this key may only deploy into " .. sub .. "/" end
  return true
end

-- text without any occurrence of prefix (the device's own paths in a
-- message the peer reads).
local function strip(text, prefix)
  local out, at = {}, 1
  while true do
    local i = text:find(prefix, at, true)
    if not i then break end
    out[#out + 1] = text:sub(at, i - 1)
    at = i + #prefix
  end
  out[#out + 1] = text:sub(at)
  return table.concat(out)
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local t = f:read("a")
  f:close()
  return t
end

-- A directory we may write into: there (made 0700 when not) and not a link.
local function ensure_dir(path)
  local st = uv.fs_lstat(path)
  if not st then
    local ok, e = uv.fs_mkdir(path, DIR_MODE)
    if not ok then return nil, tostring(e) end
    return true
  end
  if st.type ~= "directory" then return nil, path .. " is not a directory (a link is not followed)" end
  return true
end

local function write_synced(path, data)
  local fd, e = uv.fs_open(path, "wx", MODE)
  if not fd then return nil, tostring(e) end
  local ok, we = uv.fs_write(fd, data, 0)
  if ok then ok, we = uv.fs_fsync(fd) end
  uv.fs_close(fd)
  if not ok then
    uv.fs_unlink(path)
    return nil, tostring(we)
  end
  return true
end

local function sync_dir(path)
  local fd = uv.fs_open(path, "r", 0)
  if fd then
    uv.fs_fsync(fd)
    uv.fs_close(fd)
  end
end

-- The .lua files under dir now (relative names), within sub when given.
local function present(dir, sub)
  local list = {}
  local function scan(rel)
    local path = rel and dir .. "/" .. rel or dir
    local h = uv.fs_scandir(path)
    if not h then return end
    for n, t in uv.fs_scandir_next, h do
      local name = rel and rel .. "/" .. n or n
      if t == "file" and M.name_ok(name, sub) == true then list[#list + 1] = name end
    end
  end
  if not sub then scan(nil) end
  scan("admin")
  return list
end

-- Checks a request's shape and bounds; returns the files or nil, why.
local function check_request(args, sub)
  if type(args) ~= "table" or type(args.files) ~= "table" then
    return nil, "expected {files = {{name = NAME, data = TEXT}, ...}, dry_run = BOOL, delete = BOOL}"
  end
  if #args.files > M.FILES_MAX then return nil, ("more than %d files"):format(M.FILES_MAX) end
  local total, seen = 0, {}
  for _, f in ipairs(args.files) do
    if type(f) ~= "table" or type(f.data) ~= "string" then return nil, "each file is {name = NAME, data = TEXT}" end
    local ok = M.name_ok(f.name, sub)
    if ok ~= true then return nil, ok end
    if seen[f.name] then return nil, f.name .. ": given twice" end
    seen[f.name] = true
    if #f.data > M.FILE_MAX then return nil, ("%s: over %d bytes"):format(f.name, M.FILE_MAX) end
    total = total + #f.data
  end
  if total > M.TOTAL_MAX then return nil, ("over %d bytes in all"):format(M.TOTAL_MAX) end
  return args.files, seen
end

-- Runs one push. ctx: dir (the handler directory), config (config.lua or
-- nil), rt (the runtime). sub: the right's sub-directory or nil. Returns
-- the per-file report {{name=, status=, error=, handles=}...} or nil, why.
function M.push(ctx, args, sub)
  local files, names = check_request(args, sub)
  if not files then return nil, names end
  if not ctx.rt or not uv.fs_stat(ctx.dir) then return nil, "this host serves no handler directory" end
  local dry = args.dry_run == true
  local stage = ctx.dir .. "/" .. M.STAGING
  local ok, e = ensure_dir(stage)
  if ok then ok, e = ensure_dir(stage .. "/admin") end
  if not ok then return nil, e end
  for _, f in ipairs(files) do
    if f.name:find("/") then
      ok, e = ensure_dir(ctx.dir .. "/admin")
      if not ok then return nil, e end
      break
    end
  end
  local report, written = {}, false
  -- Checking runs each file's top level in the sandbox on the loop: a push
  -- of slow files would hold the device's loop for a slice per file.
  local started = uv.hrtime()
  for _, f in ipairs(files) do
    local target, tmp = ctx.dir .. "/" .. f.name, stage .. "/" .. f.name
    local r = { name = f.name }
    report[#report + 1] = r
    if (uv.hrtime() - started) / 1e6 > M.CHECK_BUDGET_MS then
      r.status, r.error = "failed", ("not checked: this push used its %d ms of checking; push fewer files at once"):format(M.CHECK_BUDGET_MS)
      goto next_file
    end
    local st = uv.fs_lstat(target)
    uv.fs_unlink(tmp) -- a push cut short earlier
    if st and st.type ~= "file" then
      r.status, r.error = "failed", f.name .. " is not a regular file on the device (a link is not written through)"
    elseif st and read(target) == f.data then
      r.status = "unchanged"
    else
      local wok, we = write_synced(tmp, f.data)
      if not wok then
        r.status, r.error = "failed", we
      else
        local cok, ce = peernet.runtime.check(tmp, { config = ctx.config })
        if not cok then
          r.status, r.error = "failed", strip(tostring(ce), stage .. "/")
          uv.fs_unlink(tmp)
        elseif dry then
          r.status = "checked"
          uv.fs_unlink(tmp)
        else
          local rok, re = uv.fs_rename(tmp, target)
          if rok then r.status, written = "written", true else r.status, r.error = "failed", tostring(re) end
        end
      end
    end
    ::next_file::
  end
  if args.delete == true then
    for _, name in ipairs(present(ctx.dir, sub)) do
      if not names[name] then
        local r = { name = name, status = dry and "would_delete" or "deleted" }
        if not dry then
          local dok, de = uv.fs_unlink(ctx.dir .. "/" .. name)
          if dok then written = true else r.status, r.error = "failed", tostring(de) end
        end
        report[#report + 1] = r
      end
    end
  end
  if written then
    sync_dir(ctx.dir)
    sync_dir(ctx.dir .. "/admin")
    -- What the running host made of them, now rather than at the watcher's next event.
    local by_file = {}
    for _, s in ipairs(ctx.rt:rescan()) do by_file[s.file] = s end
    for _, r in ipairs(report) do
      local s = by_file[ctx.dir .. "/" .. r.name]
      if r.status == "written" then
        if s and s.ok then
          r.status, r.handles = "loaded", s.handles
        else
          r.status = "failed"
          r.error = s and strip(tostring(s.err), ctx.dir .. "/") or "not loaded"
        end
      end
    end
  end
  return report
end

return M
