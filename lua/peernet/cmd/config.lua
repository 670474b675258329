-- config: serve's effective settings, each with where it came from and
-- what it allows: the running host's when one serves the data dir (flags
-- included), else <data_dir>/host.lua over the defaults.
local peernet = require "peernet"
local control = require "peernet.control"
local format = require "peernet.format"
local output = require "peernet.cli.output"
local settings = require "peernet.cli.settings"
local task = require "peernet.cli.task"

local EXIT, out, fail = output.EXIT, output.out, output.fail

local M = {}

local CONTROL_MS = 5000

-- The running host's settings: rows, or nil when none answers on the
-- control socket (a `run` host has no serve settings: false).
local function from_host(p)
  if control.probe(p.control) ~= "alive" then return nil end
  local ok, answer = task.run(function()
    return task.await(function(k) control.request(p.control, { op = "settings" }, CONTROL_MS, k) end)
  end)
  if ok and answer and answer.ok and type(answer.settings) == "table" then return answer.settings end
  return false
end

M.config = {
  run = function(o, p)
    if #o.pos > 0 then return fail("usage", "config takes no arguments") end
    local path = settings.path(p)
    local rows, title = from_host(p), nil
    local running = rows ~= nil
    if rows then
      title = "# the host serving " .. p.dir .. " (see " .. path .. ")"
    else
      local file, fe = settings.read(path)
      if not file then return fail("failure", fe) end
      rows = settings.rows(settings.effective(file, {}))
      title = "# " .. path .. (next(file) and "" or " (none: every setting is its default)")
      if running then title = title .. "\n# a `run` host serves " .. p.dir .. "; these are serve's settings" end
    end
    if o.json then
      for _, r in ipairs(rows) do
        if r.value == nil then r.value = peernet.null end
      end
      out(format.json { file = path, running = running, settings = rows })
      return EXIT.ok
    end
    local cells = {}
    for i, r in ipairs(rows) do
      cells[i] = { r.name, r.value == nil and "-" or tostring(r.value), r.source, r.allowed }
    end
    out(title)
    out(format.columns({ "SETTING", "VALUE", "FROM", "ALLOWED" }, cells))
    return EXIT.ok
  end,
}

return M
