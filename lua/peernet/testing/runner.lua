-- The built-in spec runner of `peernet-host test`: runs *_spec.lua files
-- written with describe / it / before_each / after_each and a busted-like
-- assert, so a user needs nothing but the binary to test handler scripts
-- (busted runs the same files when installed: the names are the same).
local uv = require "luv"

local M = {}

local function fmt(v)
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

local function deep_equal(a, b, seen)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  seen = seen or {}
  if seen[a] == b then return true end
  seen[a] = b
  for k, v in pairs(a) do
    if not deep_equal(v, b[k], seen) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function fail(msg, extra)
  error(extra and (msg .. ": " .. tostring(extra)) or msg, 3)
end

-- assert(v [, msg]) and the busted names specs use most.
M.assert = setmetatable({
  equal = function(want, got, msg)
    if want ~= got then fail(("expected %s, got %s"):format(fmt(want), fmt(got)), msg) end
  end,
  same = function(want, got, msg)
    if not deep_equal(want, got) then
      fail(("expected the same value as %s, got %s"):format(fmt(want), fmt(got)), msg)
    end
  end,
  truthy = function(v, msg) if not v then fail("expected a true value, got " .. fmt(v), msg) end end,
  falsy = function(v, msg) if v then fail("expected a false value, got " .. fmt(v), msg) end end,
  is_true = function(v, msg) if v ~= true then fail("expected true, got " .. fmt(v), msg) end end,
  is_false = function(v, msg) if v ~= false then fail("expected false, got " .. fmt(v), msg) end end,
  is_nil = function(v, msg) if v ~= nil then fail("expected nil, got " .. fmt(v), msg) end end,
  not_nil = function(v, msg) if v == nil then fail("expected a value, got nil", msg) end end,
  matches = function(pattern, s, msg)
    if type(s) ~= "string" or not s:find(pattern) then
      fail(("expected %s to match %s"):format(fmt(s), fmt(pattern)), msg)
    end
  end,
  has_error = function(fn, want, msg)
    local ok, err = pcall(fn)
    if ok then fail("expected an error", msg) end
    if want and not tostring(err):find(want, 1, true) then
      fail(("expected the error %s, got %s"):format(fmt(want), fmt(err)), msg)
    end
  end,
}, {
  __call = function(_, v, msg, ...)
    if not v then error(msg or "assertion failed!", 2) end
    return v, msg, ...
  end,
})
M.assert.equals = M.assert.equal

-- The line of the spec file that failed: the innermost frame in it.
local function where(file)
  for level = 3, 60 do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    -- source, not short_src: Lua cuts a long path short in the latter.
    if info.source == "@" .. file and info.currentline > 0 then return file .. ":" .. info.currentline end
  end
  return file
end

local function strip_position(msg, file)
  msg = tostring(msg)
  local s = msg:gsub("^" .. file:gsub("%p", "%%%0") .. ":%d+: ", "")
  return s
end

-- Runs one file; results go to the counts in r and lines to out.
local function run_file(file, r, out)
  local root = { name = nil, children = {}, before = {}, after = {} }
  local current = root
  local env = setmetatable({}, { __index = _G })
  -- Each file has its own assert and os: one that replaces assert.equal
  -- or calls os.exit cannot pass or end the files after it.
  local assert_copy = {}
  for k, v in pairs(M.assert) do assert_copy[k] = v end
  env.assert = setmetatable(assert_copy, getmetatable(M.assert))
  env.os = setmetatable({ exit = function() error("a spec may not call os.exit", 2) end }, { __index = os })
  function env.describe(name, fn)
    local g = { name = name, parent = current, children = {}, before = {}, after = {} }
    current.children[#current.children + 1] = g
    local outer = current
    current = g
    fn()
    current = outer
  end
  function env.it(name, fn)
    current.children[#current.children + 1] = { name = name, fn = fn, parent = current }
  end
  function env.before_each(fn) current.before[#current.before + 1] = fn end
  function env.after_each(fn) current.after[#current.after + 1] = fn end
  function env.pending(name) current.children[#current.children + 1] = { name = name, pending = true } end
  local chunk, err = loadfile(file, "t", env)
  if chunk then
    local ok, e = xpcall(chunk, function(m) return { at = where(file), msg = m } end)
    if not ok then chunk, err = nil, e end
  end
  if not chunk then
    r.failed = r.failed + 1
    local at = type(err) == "table" and err.at or file
    local msg = type(err) == "table" and strip_position(err.msg, file) or tostring(err)
    r.failures[#r.failures + 1] = { at = at, test = "", message = msg }
    out(("FAIL %s: %s"):format(at, msg))
    return
  end
  local function full(t)
    local names = {}
    while t do
      if t.name then table.insert(names, 1, t.name) end
      t = t.parent
    end
    return table.concat(names, " ")
  end
  local function hooks(g, key, list)
    if not g then return list end
    hooks(g.parent, key, list)
    for _, fn in ipairs(g[key]) do list[#list + 1] = fn end
    return list
  end
  local function run_it(t)
    if t.pending then
      r.pending = r.pending + 1
      return
    end
    local handler = function(m) return { at = where(file), msg = m } end
    local ok, e = true, nil
    for _, fn in ipairs(hooks(t.parent, "before", {})) do
      ok, e = xpcall(fn, handler)
      if not ok then break end
    end
    if ok then ok, e = xpcall(t.fn, handler) end
    local afters = hooks(t.parent, "after", {})
    for i = #afters, 1, -1 do
      local ok2, e2 = xpcall(afters[i], handler)
      if ok and not ok2 then ok, e = ok2, e2 end
    end
    if ok then
      r.passed = r.passed + 1
    else
      r.failed = r.failed + 1
      local msg = strip_position(e.msg, file)
      r.failures[#r.failures + 1] = { at = e.at, test = full(t), message = msg }
      out(("FAIL %s: %s\n     %s"):format(e.at, full(t), msg))
    end
  end
  local function walk(g)
    for _, c in ipairs(g.children) do
      if c.children then walk(c) else run_it(c) end
    end
  end
  walk(root)
end

-- The *_spec.lua files under dir (sorted), or dir itself when it is a file.
-- The tree is walked here, never handed to a shell or find(1): a
-- directory named "-delete" or "!" is a name, nothing more. Symbolic
-- links are not followed (no loops), and the walk is bounded.
local FILES_MAX, DEPTH_MAX = 10000, 32
function M.files(dir)
  if dir:match("_spec%.lua$") then return { dir } end
  local list = {}
  local function walk(d, depth)
    if depth > DEPTH_MAX or #list >= FILES_MAX then return end
    local h = uv.fs_scandir(d)
    if not h then return end
    while #list < FILES_MAX do
      local name, kind = uv.fs_scandir_next(h)
      if not name then break end
      local path = d .. "/" .. name
      if kind == "directory" then
        walk(path, depth + 1)
      elseif kind == "file" and name:match("_spec%.lua$") then
        list[#list + 1] = path
      end
    end
  end
  local root = dir:gsub("/+$", "")
  walk(root == "" and "/" or root, 0)
  table.sort(list)
  return list
end

-- Runs the spec files; returns the counts {passed, failed, pending, files}
-- and the failures {at = "file:line", test = "describe it", message}.
function M.run(files, out)
  local r = { passed = 0, failed = 0, pending = 0, files = #files, failures = {} }
  for _, file in ipairs(files) do run_file(file, r, out) end
  return r
end

function M.summary(r)
  return ("%d passed, %d failed%s (%d file%s)"):format(r.passed, r.failed,
    r.pending > 0 and (", " .. r.pending .. " pending") or "", r.files, r.files == 1 and "" or "s")
end

return M
