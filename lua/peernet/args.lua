-- ARGS of `peernet-host call/send`: a Lua table-constructor literal (any Lua
-- expression, in fact) evaluated in an empty sandbox. The only names in
-- scope are the value constructors of docs/values.md, so every ETF term can
-- be written: atom"ok", tuple(1, 2), null, map{}, bigint"18446744073709551615".
--
-- Bounds, because the text comes from a command line: at most MAX_TEXT bytes, a text chunk only, an instruction budget,
-- a memory budget checked after every instruction, and no string methods
-- (("x"):rep(1e9) would allocate in one instruction). Switching the string
-- methods off touches the state's shared string metatable: call this only
-- in the CLI's own process, never inside a serving host (the control socket
-- carries ETF, not ARGS text).
local peernet = require "peernet"

local M = {}

M.MAX_TEXT = 64 * 1024
M.MAX_STEPS = 1000000
M.MAX_MEMORY_KB = 64 * 1024

local function env()
  return {
    atom = peernet.atom,
    tuple = peernet.tuple,
    null = peernet.null,
    map = peernet.etf.map,
    bigint = peernet.etf.bigint,
  }
end

-- Returns true, value (the value may be nil) or false, "ARGS: message".
function M.parse(text)
  if type(text) ~= "string" then return false, "ARGS: expected text" end
  if #text > M.MAX_TEXT then
    return false, ("ARGS: %d bytes is more than the limit of %d"):format(#text, M.MAX_TEXT)
  end
  if text:match("^%s*$") then return false, "ARGS: empty" end
  local chunk, err = load("return " .. text, "=ARGS", "t", env())
  if not chunk then return false, err end
  local strmeta = getmetatable("")
  local index = strmeta.__index
  local base = collectgarbage("count")
  local steps = 0
  local over
  local function hook()
    steps = steps + 1
    if steps > M.MAX_STEPS then over = "ARGS: too much computation" error(over, 0) end
    if collectgarbage("count") - base > M.MAX_MEMORY_KB then
      over = "ARGS: too much memory" error(over, 0)
    end
  end
  local co = coroutine.create(function() return chunk() end)
  debug.sethook(co, hook, "", 1)
  strmeta.__index = nil
  local res = table.pack(coroutine.resume(co))
  strmeta.__index = index
  collectgarbage()
  if not res[1] then
    local msg = over or tostring(res[2])
    if not msg:match("^ARGS") then msg = "ARGS: " .. msg end
    return false, msg
  end
  if res.n > 2 then return false, "ARGS: one value expected, got " .. (res.n - 1) end
  return true, res[2]
end

-- ARGS as ETF bytes (with the version byte), ready to travel; nil, err.
function M.encode(text)
  local ok, value = M.parse(text)
  if not ok then return nil, value end
  local bytes, err = peernet.etf.encode(value)
  if not bytes then return nil, "ARGS: " .. tostring(err) end
  return bytes
end

return M
