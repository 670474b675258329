-- How the CLI prints values, for people (pretty) and for programs (JSON).
--
-- pretty(v): a Lua literal in ARGS syntax (peernet.args), so what a
-- call prints can be pasted back as ARGS: atom"ok", tuple(...), null,
-- map{} for an empty map, bigint"..." beyond int64, strings with escapes
-- for bytes that are not printable UTF-8. Keys are sorted.
--
-- json(v): one line of JSON (docs/cli.md "JSON"): numbers, booleans,
-- null (nil and peernet.null), strings (binaries that are valid UTF-8, and
-- atoms by name), arrays (lists), {"$tuple": [...]} (tuples), objects
-- (maps; keys that are not strings become their JSON text), and
-- {"$base64": "..."} for a binary that is not UTF-8. JSON cannot tell an
-- atom from a string: use the pretty form when that matters.
--
-- shaped(name, t): what the CLI prints about one thing (a peer, a status,
-- a checked script) always has the same keys, null for what is unknown.
local peernet = require "peernet"

local M = {}

local MAX_DEPTH = 200 -- the decoder's own limit is lower; this guards hand-made tables

local function is_ident(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil and not ({
    ["and"] = 1, ["break"] = 1, ["do"] = 1, ["else"] = 1, ["elseif"] = 1, ["end"] = 1,
    ["false"] = 1, ["for"] = 1, ["function"] = 1, ["goto"] = 1, ["if"] = 1, ["in"] = 1,
    ["local"] = 1, ["nil"] = 1, ["not"] = 1, ["or"] = 1, ["repeat"] = 1, ["return"] = 1,
    ["then"] = 1, ["true"] = 1, ["until"] = 1, ["while"] = 1,
  })[s]
end

local ESCAPES = { ["\n"] = "\\n", ["\t"] = "\\t", ['"'] = '\\"', ["\\"] = "\\\\" }

-- A Lua string literal; valid UTF-8 stays readable, other bytes are \xNN.
local function quote(s)
  local pattern = utf8.len(s) and '[%c"\\]' or '[%c"\\\128-\255]'
  local out = s:gsub(pattern, function(c) return ESCAPES[c] or ("\\x%02x"):format(c:byte()) end)
  return '"' .. out .. '"'
end

-- The shortest of %.15g and %.17g that reads back as the same float.
local function float_text(n)
  local s = ("%.15g"):format(n)
  if tonumber(s) == n then return s end
  return ("%.17g"):format(n)
end

local function number(n)
  if math.type(n) == "integer" then return tostring(n) end
  if n ~= n then return "(0/0)" end
  if n == math.huge then return "math.huge" end
  if n == -math.huge then return "-math.huge" end
  local s = float_text(n)
  if not s:find("[%.eEn]") then s = s .. ".0" end
  return s
end

local function is_sequence(t)
  local n = #t
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n, n
end

-- Keys by type, then value; other keys by their text. That text is made
-- once per key before sorting: tostring of a 4,096-byte bigint takes about
-- 2 ms, and a comparator calling it ran n log n times (250 such keys: 10 s).
local function sorted_keys(t)
  local keys, text = {}, {}
  for k in pairs(t) do
    keys[#keys + 1] = k
    local tk = type(k)
    if tk ~= "number" and tk ~= "string" then text[k] = tostring(k) end
  end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return text[a] < text[b]
  end)
  return keys, text
end

-- A big integer key's digits, made once by sorted_keys.
local function is_bigint(k) return type(k) == "userdata" and not peernet.is_atom(k) end

local pretty

local function pretty_table(t, depth)
  if peernet.is_tuple(t) then
    local parts = {}
    for i = 1, t.n or #t do parts[i] = pretty(t[i], depth + 1) end
    return "tuple(" .. table.concat(parts, ", ") .. ")"
  end
  local seq, n = is_sequence(t)
  local is_map = peernet.etf.is_map(t)
  if seq and not is_map then
    local parts = {}
    for i = 1, n do parts[i] = pretty(t[i], depth + 1) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  local parts = {}
  local keys, text = sorted_keys(t)
  for _, k in ipairs(keys) do
    local kp = is_bigint(k) and "bigint" .. quote(text[k]) or pretty(k, depth + 1)
    local ks = is_ident(k) and k or ("[" .. kp .. "]")
    parts[#parts + 1] = ks .. " = " .. pretty(t[k], depth + 1)
  end
  local body = "{" .. table.concat(parts, ", ") .. "}"
  -- An empty map, or one whose keys are 1..n, would read back as a list.
  if is_map and (seq or #parts == 0) then return "map" .. body end
  return body
end

function pretty(v, depth)
  depth = depth or 0
  if depth > MAX_DEPTH then error("value nested too deeply to print", 0) end
  local t = type(v)
  if v == nil then return "nil" end
  if v == peernet.null then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then return number(v) end
  if t == "string" then return quote(v) end
  if peernet.is_atom(v) then return "atom" .. quote(tostring(v)) end
  if t == "table" then return pretty_table(v, depth) end
  if t == "userdata" then return "bigint" .. quote(tostring(v)) end -- the only other value
  return "<" .. t .. ">"
end

M.pretty = function(v) return pretty(v, 0) end

-- ---- JSON ---------------------------------------------------------------

local JSON_ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r",
  ["\t"] = "\\t", ["\b"] = "\\b", ["\f"] = "\\f" }

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return JSON_ESCAPES[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  return (s:gsub("..?.?", function(chunk)
    local a, b, c = chunk:byte(1, 3)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local out = {}
    for i = 1, 4 do
      local idx = (n >> (6 * (4 - i))) & 63
      out[i] = B64:sub(idx + 1, idx + 1)
    end
    if not b then out[3], out[4] = "=", "=" elseif not c then out[4] = "=" end
    return table.concat(out)
  end))
end
M.base64 = base64
M.quote = quote

local json

local function json_key(k, depth, text)
  if type(k) == "string" and utf8.len(k) then return json_string(k) end
  if is_bigint(k) then return json_string(text[k]) end
  if peernet.is_atom(k) then return json_string(tostring(k)) end
  return json_string(json(k, depth + 1))
end

function json(v, depth)
  depth = depth or 0
  if depth > MAX_DEPTH then error("value nested too deeply to print", 0) end
  local t = type(v)
  if v == nil or v == peernet.null then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return float_text(v)
  end
  if t == "string" then
    if utf8.len(v) then return json_string(v) end
    return '{"$base64":"' .. base64(v) .. '"}'
  end
  if peernet.is_atom(v) then return json_string(tostring(v)) end
  if t == "table" then
    if peernet.is_tuple(v) then
      local parts = {}
      for i = 1, v.n or #v do parts[i] = json(v[i], depth + 1) end
      return '{"$tuple":[' .. table.concat(parts, ",") .. "]}"
    end
    local seq, n = is_sequence(v)
    if seq and not peernet.etf.is_map(v) then
      local parts = {}
      for i = 1, n do parts[i] = json(v[i], depth + 1) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local parts = {}
    local keys, text = sorted_keys(v)
    for _, k in ipairs(keys) do
      parts[#parts + 1] = json_key(k, depth, text) .. ":" .. json(v[k], depth + 1)
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  if t == "userdata" then return tostring(v) end -- bigint: digits, a JSON number
  return "null"
end

M.json = function(v) return json(v, 0) end

-- The keys of each kind of object the CLI prints (docs/cli.md).
M.SHAPES = {
  peer = { "key", "fingerprint", "label", "status", "trusted", "addr", "last_seen", "connections" },
  status = { "running", "key", "data_dir", "mode", "pid", "listen", "uptime", "connected", "known",
    "trusted", "stats", "scripts" },
  script = { "file", "ok", "error", "handles", "warnings" },
  trust = { "key", "label", "addr", "added" },
  spec_failure = { "at", "test", "message" },
}

-- A copy of t with exactly the keys of shape name, null for the absent ones.
function M.shaped(name, t)
  local out = {}
  for _, k in ipairs(M.SHAPES[name]) do
    local v = t[k]
    if v == nil then v = peernet.null end
    out[k] = v
  end
  return out
end

-- ---- QR codes in a terminal ------------------------------------------------

-- Two rows of modules per line of text with Unicode half blocks, in
-- black on white set by the line itself (SGR 30;47), so the code has the
-- same colours on a dark and a light theme: dark modules are the
-- foreground's blocks, light ones (and the quiet zone) the background. A
-- code drawn in the theme's own colours is inverted on one of the two,
-- and many scanners (zbar among them) do not read an inverted code.
M.QR_ON, M.QR_OFF = "\27[30;47m", "\27[0m"

function M.qr_text(m)
  local lines = {}
  for y = 1, m.size, 2 do
    local top, bottom = m[y], m[y + 1] or {}
    local line = {}
    for x = 1, m.size do
      local a, b = top[x], bottom[x]
      line[x] = (a and b) and "█" or a and "▀" or b and "▄" or " "
    end
    lines[#lines + 1] = M.QR_ON .. table.concat(line) .. M.QR_OFF
  end
  return table.concat(lines, "\n")
end

-- ---- tables of text -------------------------------------------------------

function M.columns(header, rows)
  local width = {}
  for i, h in ipairs(header) do width[i] = utf8.len(h) end
  for _, r in ipairs(rows) do
    for i = 1, #header do width[i] = math.max(width[i], utf8.len(tostring(r[i] or "")) or 0) end
  end
  local out = {}
  local function line(r)
    local cells = {}
    for i = 1, #header do
      local c = tostring(r[i] or "")
      cells[i] = i == #header and c or c .. (" "):rep(width[i] - (utf8.len(c) or #c))
    end
    out[#out + 1] = table.concat(cells, "  ")
  end
  line(header)
  for _, r in ipairs(rows) do line(r) end
  return table.concat(out, "\n")
end

return M
