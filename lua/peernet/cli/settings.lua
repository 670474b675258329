-- serve's settings: <data_dir>/host.lua (docs/cli.md "The serve config
-- file"). It returns a table of settings: serve's own (listen, handlers,
-- log_level) and every host setting of docs/host.md, taken from
-- peernet.host.options() so the list is never written twice. Each key is
-- checked against its kind and range; an error names the file, the line
-- of the key and what it allows.
local peernet = require "peernet"
local format = require "peernet.format"
local log = require "peernet.cli.log"

local M = {}

M.FILE = "host.lua"
-- The file is read and evaluated in C (peernet.datafile: the checks of
-- config.lua, and the sandbox of ARGS with its memory cap and budget).
M.MAX_BYTES = peernet.datafile.MAX_BYTES

-- Host settings serve does not offer: run's alone.
local NOT_SERVE = { weak = true }
-- Where serve's default differs from the host's (peernet.host.new's
-- lua_default is for Lua programs; serve is the C host on a LAN).
local SERVE_DEFAULT = { mdns = true }

local SERVE_OWN = {
  { name = "listen", kind = "ADDR", default = "[::]:4040", meaning = "TCP address and port to listen on (port 0: any)" },
  { name = "handlers", kind = "PATH", default = nil, meaning = "directory of handler scripts (default: <data_dir>/handlers)" },
  { name = "log_level", kind = "LEVEL", default = log.DEFAULT, meaning = "least level logged: " .. log.choices() },
}

-- The settings in order: serve's own, then the host's. Each: name, kind,
-- default, min, max, unit, meaning, host (true: passed to the host).
function M.list()
  local list = {}
  for _, s in ipairs(SERVE_OWN) do list[#list + 1] = s end
  for _, o in ipairs(peernet.host.options()) do
    if not NOT_SERVE[o.name] then
      local d = o.default
      if SERVE_DEFAULT[o.name] ~= nil then d = SERVE_DEFAULT[o.name] end
      if o.kind == "NETMON" and math.type(d) == "integer" then d = ({ [0] = false, true, "poll" })[d] end
      list[#list + 1] = { name = o.name, kind = o.kind, default = d, min = o.min, max = o.max,
        unit = o.unit, meaning = o.meaning, host = true }
    end
  end
  return list
end

function M.path(p) return p.dir .. "/" .. M.FILE end

-- What a setting accepts, for messages and `peernet-host config`.
function M.allowed(s)
  local k = s.kind
  if k == "FLAG" then return "true or false" end
  if k == "NETMON" then return 'true, false or "poll"' end
  if k == "LEVEL" then return table.concat(log.LEVELS, ", ") end
  if k == "ADDR" then return "HOST:PORT" end
  if k == "PATH" then return "a directory" end
  if k == "TEXT" then return ("text of %d..%d bytes"):format(s.min, s.max) end
  return ("%d..%d%s"):format(s.min, s.max, s.unit ~= "" and " " .. s.unit or "")
end

local function check_value(s, v)
  local k = s.kind
  if k == "FLAG" then return type(v) == "boolean" end
  if k == "NETMON" then return type(v) == "boolean" or v == "poll" end
  if k == "LEVEL" then return log.is_level(v) end
  if k == "ADDR" then
    -- port 0: any free port (SERVE_OWN's listen)
    local port = type(v) == "string" and v:match("^.+:(%d+)$")
    return port and #port <= 5 and tonumber(port) <= 65535 or false
  end
  if k == "PATH" then return type(v) == "string" and v ~= "" end
  if k == "TEXT" then return type(v) == "string" and #v >= s.min and #v <= s.max end
  return math.type(v) == "integer" and v >= s.min and v <= s.max
end

-- The line where key is set in text (1 when it cannot be told).
local function line_of(text, key)
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    -- plain find: a key is the file's text, not a pattern
    local plain = line:gsub("%-%-.*$", "")
    local at = plain:find(key, 1, true)
    while at do
      local before, after = plain:sub(at - 1, at - 1), plain:sub(at + #key)
      if (before == "" or not before:find("[%w_]")) and after:find("^%s*=")
        or before:find("[\"']") and after:find("^[\"']%s*%]") then
        return n
      end
      at = plain:find(key, at + 1, true)
    end
  end
  return 1
end

-- A value for a message: control characters escaped, so that a key
-- cannot put a line of its own into the log.
local function shown(v)
  if type(v) == "string" then return format.quote(v) end
  return tostring(v)
end

-- Reads path: the settings table, {} when there is no file, or nil and
-- "path:line: message". Like config.lua it must be the operator's alone:
-- it names the listening address and the handler directory.
function M.read(path)
  local ok, t, text = peernet.datafile.load(path)
  if not ok then
    if t == nil then return {} end
    return nil, t
  end
  if type(t) ~= "table" then return nil, path .. ":1: must return a table: return { log_level = \"info\", ... }" end
  local by_name = {}
  for _, s in ipairs(M.list()) do by_name[s.name] = s end
  for k, v in pairs(t) do
    local s = type(k) == "string" and by_name[k]
    if not s then
      return nil, ("%s:%d: unknown setting %s (peernet-host config lists them)"):format(path,
        type(k) == "string" and line_of(text, k) or 1, shown(k))
    end
    if not check_value(s, v) then
      return nil, ("%s:%d: %s must be %s, got %s"):format(path, line_of(text, k), k, M.allowed(s), shown(v))
    end
  end
  return t
end

-- The effective settings: flags over the file over the defaults. Returns
-- a table name -> {value =, source = "default" | "file" | "flag"}.
function M.effective(file, flags)
  local eff = {}
  for _, s in ipairs(M.list()) do
    local v, src = s.default, "default"
    if file[s.name] ~= nil then v, src = file[s.name], "file" end
    if flags[s.name] ~= nil then v, src = flags[s.name], "flag" end
    eff[s.name] = { value = v, source = src }
  end
  return eff
end

-- The effective settings as a list, in M.list() order: {name, value,
-- source, allowed, meaning} (value absent when unset).
function M.rows(eff)
  local rows = {}
  for i, s in ipairs(M.list()) do
    rows[i] = { name = s.name, value = eff[s.name].value, source = eff[s.name].source,
      allowed = M.allowed(s), meaning = s.meaning }
  end
  return rows
end

-- For the other data files read the same way (config.lua's peers, rights.lua).
M.line_of = line_of

-- peernet.host.new's options for the effective settings.
function M.host_options(eff)
  local o = {}
  for _, s in ipairs(M.list()) do
    if s.host then
      o[s.name] = eff[s.name].value
    end
  end
  return o
end

return M
