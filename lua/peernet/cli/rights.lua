-- What a device lets other peers' keys do to it (docs/remote.md): the
-- `peers` table of <data_dir>/config.lua, beside the scripts' grants.
--
--   peers = {
--     laptop = { deploy = true, logs = true },    -- a trust.list label...
--     ["02903c4a…64 hex digits"] = { deploy = "admin" },  -- ...or a key
--     kiosk = { console = { read = { "/sys/class/gpio/*" }, exec = { "/usr/bin/gpioset" } } },
--   }
--
-- console = { read =, write =, exec = } grants the console and its
-- session's host.* calls, with the syntax and meaning of the scripts'
-- grants (src/runtime/caps.c).
--
-- Nothing is allowed by default. The file is followed live: every use
-- looks whether it changed (one stat) and reads it again; a version that
-- does not load is logged once (file:line) and the last good rights stay.
local uv = require "luv"
local peernet = require "peernet"
local settings = require "peernet.cli.settings"

local M = {}

M.MAX_BYTES = 256 * 1024 -- as the runtime bounds config.lua (src/runtime/caps.c)

-- The rights, one row each; a new right is a row here and a handle in
-- serve (lua/peernet/cli/remote.lua). check(v) -> true or what the value must be.
M.RIGHTS = {
  { name = "deploy", meaning = "push handler scripts (peernet-host push)",
    check = function(v)
      if v == true or v == false or v == "admin" then return true end
      return 'true, false or "admin" (the sub-directory of admin modules)'
    end },
  { name = "logs", meaning = "follow the log (peernet-host logs)",
    check = function(v) return type(v) == "boolean" or "true or false" end },
  { name = "console", meaning = "evaluate Lua in a sandbox of its own (peernet-host console)",
    check = function(v)
      if type(v) == "boolean" then return true end
      return M.check_grants(v)
    end },
}
M.GRANTS = { "read", "write", "exec" } -- a console's host.* grants, as config.lua's scripts'
M.MAX_GRANTS = 64                        -- entries per list, as src/runtime/caps.c bounds them

local GRANTS_SHAPE = "true, false or { read = {PATHS}, write = {PATHS}, exec = {PROGRAMS} } (absolute paths, globs)"

local function shown(v) return type(v) == "string" and ("%q"):format(v) or tostring(v) end

-- A console's grants: true, or what they must be and what is wrong.
function M.check_grants(v)
  if type(v) ~= "table" then return GRANTS_SHAPE end
  local known = {}
  for _, k in ipairs(M.GRANTS) do known[k] = true end
  for k, list in pairs(v) do
    if not known[k] then return GRANTS_SHAPE, "an entry " .. shown(k) end
    if type(list) ~= "table" then return GRANTS_SHAPE, k .. " = " .. shown(list) end
    local n = 0
    for _ in pairs(list) do n = n + 1 end
    if n > M.MAX_GRANTS then return GRANTS_SHAPE, ("%d entries in %s (at most %d)"):format(n, k, M.MAX_GRANTS) end
    for i = 1, n do
      local p = list[i]
      if type(p) ~= "string" or p:sub(1, 1) ~= "/" or p:find("\0", 1, true) or #p >= 4096 then
        return GRANTS_SHAPE, ("%s[%d] = %s"):format(k, i, shown(p))
      end
    end
  end
  return true
end

local by_name = {}
for _, r in ipairs(M.RIGHTS) do by_name[r.name] = r end

local function names()
  local n = {}
  for _, r in ipairs(M.RIGHTS) do n[#n + 1] = r.name end
  return table.concat(n, ", ")
end

-- Reads path: {[name] = {right = value}} (names as written: labels or
-- keys), {} without a file, or nil, "path:line: message".
function M.read(path)
  -- Read and evaluated as serve's host.lua is (peernet.datafile: the
  -- operator's own regular file, then a capped sandbox), with the
  -- runtime's bound on config.lua.
  local ok, t, text = peernet.datafile.load(path, M.MAX_BYTES)
  if not ok then
    if t == nil then return {} end
    return nil, t
  end
  if type(t) ~= "table" then return {} end -- the runtime reports that one
  local peers = t.peers
  if peers == nil then return {} end
  local at = settings.line_of(text, "peers")
  if type(peers) ~= "table" then
    return nil, ("%s:%d: peers must be a table: peers = { [\"LABEL or KEY\"] = { %s } }"):format(path, at, names())
  end
  local out = {}
  for who, rights in pairs(peers) do
    local line = type(who) == "string" and settings.line_of(text, who) or at
    if line == 1 then line = at end
    if type(who) ~= "string" or type(rights) ~= "table" then
      return nil, ("%s:%d: each entry of peers is [\"LABEL or KEY\"] = { %s = ... }"):format(path, line, names())
    end
    for right, v in pairs(rights) do
      local r = by_name[right]
      if not r then
        return nil, ("%s:%d: peers[%q]: unknown right %s (there are: %s)"):format(path, line, who, shown(right), names())
      end
      local good, got = r.check(v)
      if good ~= true then
        return nil, ("%s:%d: peers[%q].%s must be %s, got %s"):format(path, line, who, right, good, got or shown(v))
      end
    end
    out[who] = rights
  end
  return out
end

-- A follower of config.lua's peers for one host. opts: config (path),
-- trust (trust.list path), log(level, msg).
function M.new(opts)
  local self = {}
  local current, seen = {}, nil
  local function version(st)
    return st and table.concat({ st.mtime.sec, st.mtime.nsec, st.ctime.sec, st.ctime.nsec, st.size, st.ino }, ":") or "none"
  end
  local function refresh()
    local v = version(uv.fs_stat(opts.config))
    if v == seen then return end
    seen = v
    local t, e = M.read(opts.config)
    if not t then
      opts.log("error", e .. " (the last good peers rights stay)")
      return
    end
    current = t
  end
  -- The rights entry of a key (hex): by its full key, else by its label.
  local function entry(key)
    refresh()
    if current[key] then return current[key] end
    local store = peernet.trust.open(opts.trust)
    local e = store and store:get(key)
    if store then store:close() end
    if e and e.label and current[e.label] then return current[e.label] end
    for who, r in pairs(current) do
      local k = peernet.keys.parse(who)
      if k and peernet.keys.hex(k) == key then return r end
    end
    return nil
  end
  -- The value of right for key: false when not granted.
  function self.get(key, right)
    local r = entry(key)
    return r and r[right] or false
  end
  -- "KEYPREFIX (label)" for log lines.
  function self.who(key)
    local store = peernet.trust.open(opts.trust)
    local e = store and store:get(key)
    if store then store:close() end
    return key:sub(1, 16) .. (e and e.label and " (" .. e.label .. ")" or "")
  end
  return self
end

return M
