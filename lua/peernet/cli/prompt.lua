-- The console's line reader: Debian's lua-readline (line editing and a
-- history file) when it is installed and stdin is a terminal, else plain
-- io.read (a pipe, a file, or no lua-readline), with the prompt written
-- only to a terminal.
local uv = require "luv"

local M = {}

M.HISTORY_LINES = 1000 -- kept in the history file

-- A reader: r.read(prompt) -> line or nil at end of input; r.close().
-- history: the history file's path (readline only).
function M.new(history)
  local tty = uv.guess_handle(0) == "tty"
  local ok, rl = false, nil
  if tty then ok, rl = pcall(require, "readline") end
  if ok and type(rl) == "table" and rl.readline then
    pcall(rl.set_options, { histfile = history, keeplines = M.HISTORY_LINES, auto_add = true,
      completion = false })
    return {
      read = function(prompt) return rl.readline(prompt) end,
      close = function() pcall(rl.save_history) end,
    }
  end
  return {
    read = function(prompt)
      if tty then
        io.stdout:write(prompt)
        io.stdout:flush()
      end
      return io.read("l")
    end,
    close = function() end,
  }
end

return M
