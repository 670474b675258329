-- A command's waits: its work runs as a coroutine driven by the loop.
local uv = require "luv"
local output = require "peernet.cli.output"

local M = {}

-- Runs fn(...) as a coroutine driven by the loop; returns xpcall-style results.
function M.run(fn, ...)
  local result
  local co = coroutine.create(function(...)
    result = table.pack(xpcall(fn, debug.traceback, ...))
  end)
  local ok, e = coroutine.resume(co, ...)
  if not ok then return false, e end
  while not result do
    if not uv.run("once") and not result then
      return false, "internal: the loop has nothing left to do but the command is not done"
    end
  end
  return table.unpack(result, 1, result.n)
end

-- Inside a task: start(k) begins something whose callback is k; returns
-- what k was called with.
function M.await(start)
  local co = assert(coroutine.running())
  local res, yielded
  start(function(...)
    if res then return end
    res = table.pack(...)
    if yielded then
      local ok, e = coroutine.resume(co)
      if not ok then output.err("internal: ", tostring(e)) end
    end
  end)
  if not res then
    yielded = true
    coroutine.yield()
  end
  return table.unpack(res, 1, res.n)
end

return M
