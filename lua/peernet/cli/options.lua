-- A command's options and positionals (docs/cli.md "Options").
local peernet = require "peernet"
local help = require "peernet.cli.help"

local M = {}

-- spec (help.spec(command)): opts, name -> "value" | "flag". Options may
-- come anywhere (before `--`), as --name value or --name=value; help.GLOBAL's
-- (--data-dir, --json, --help) are known to every command. spec.stop: options end at the first positional
-- (run: the script's own arguments are left alone).
-- Returns { pos = {...}, [name] = value | true } or nil, message.
function M.parse(argv, first, spec)
  local o = { pos = {} }
  local known = {}
  for _, g in ipairs(help.GLOBAL) do known[g.name] = g.arg and "value" or "flag" end
  for k, v in pairs(spec.opts or {}) do known[k] = v end
  local i = first
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do o.pos[#o.pos + 1] = argv[j] end
      break
    elseif (a == "-h" or a:match("^%-%-%a")) and not (spec.stop and #o.pos > 0) then
      local name, value = a:match("^%-%-([%w-]+)=(.*)$")
      name = name or (a == "-h" and "help" or a:sub(3))
      local kind = known[name]
      if not kind then return nil, "unknown option --" .. name end
      if kind == "value" then
        if not value then
          i = i + 1
          value = argv[i]
          if not value then return nil, "--" .. name .. " needs a value" end
        end
        o[name] = value
      else
        if value then return nil, "--" .. name .. " takes no value" end
        o[name] = true
      end
    else
      o.pos[#o.pos + 1] = a
    end
    i = i + 1
  end
  return o
end

-- Is n a timeout any setting takes: whole milliseconds, 1..peernet.ms_max?
function M.is_ms(n)
  return math.type(n) == "integer" and n >= 1 and n <= peernet.ms_max
end

-- o[name] as milliseconds (default when absent), or nil, message.
function M.ms(o, name, default)
  if o[name] == nil then return default end
  local n = tonumber(o[name])
  n = n and n == math.floor(n) and math.tointeger(n)
  if not M.is_ms(n) then
    return nil, ("--%s must be a whole number of milliseconds (1..%d)"):format(name, peernet.ms_max)
  end
  return n
end

return M
