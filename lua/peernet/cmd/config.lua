-- config: serve's effective settings, from <data_dir>/host.lua over the
-- defaults, each with where it came from and what it allows.
local peernet = require "peernet"
local format = require "peernet.format"
local output = require "peernet.cli.output"
local settings = require "peernet.cli.settings"

local EXIT, out, fail = output.EXIT, output.out, output.fail

local M = {}

local function text(v)
  if v == nil then return "-" end
  if type(v) == "string" then return v end
  return tostring(v)
end

M.config = {
  summary = "print serve's effective settings (host.lua in the data dir over the defaults)",
  usage = "config [--json]",
  run = function(o, p)
    if #o.pos > 0 then return fail("usage", "config takes no arguments") end
    local path = settings.path(p)
    local file, fe = settings.read(path)
    if not file then return fail("failure", fe) end
    local eff = settings.effective(file, {})
    if o.json then
      local list = {}
      for i, s in ipairs(settings.list()) do
        local v = eff[s.name].value
        list[i] = { name = s.name, value = v == nil and peernet.null or v, source = eff[s.name].source,
          allowed = settings.allowed(s), meaning = s.meaning }
      end
      out(format.json { file = path, settings = list })
      return EXIT.ok
    end
    local rows = {}
    for i, s in ipairs(settings.list()) do
      rows[i] = { s.name, text(eff[s.name].value), eff[s.name].source, settings.allowed(s) }
    end
    out("# " .. path .. (next(file) and "" or " (none: every setting is its default)"))
    out(format.columns({ "SETTING", "VALUE", "FROM", "ALLOWED" }, rows))
    return EXIT.ok
  end,
}

return M
