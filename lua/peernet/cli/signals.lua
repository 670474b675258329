-- SIGINT and SIGTERM for serve and run: the first asks to stop, a second
-- stops the loop at once.
local uv = require "luv"
local output = require "peernet.cli.output"

local M = {}

-- How long a stopping host lets calls in progress finish.
M.DRAIN_MS = 5000

-- on_signal(name) runs once, at the first signal. weak: the signal
-- handles do not keep the loop alive (run ends when its script is done).
-- Returns a function that closes the handles.
function M.on_stop(weak, on_signal)
  local handles = {}
  local fired = false
  for _, name in ipairs { "sigint", "sigterm" } do
    local s = uv.new_signal()
    s:start(name, function()
      if fired then
        output.err("second ", name, ": stopping now")
        uv.stop()
        return
      end
      fired = true
      on_signal(name)
    end)
    if weak then s:unref() end
    handles[#handles + 1] = s
  end
  return function()
    for _, s in ipairs(handles) do
      if not s:is_closing() then s:close() end
    end
  end
end

return M
