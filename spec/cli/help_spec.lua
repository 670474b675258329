-- docs/cli.md and `--help` agree: both come from lua/peernet/cli/help.lua's
-- table of commands. This checks docs/cli.md's "Options" table against that
-- table row by row, both ways (an option in one and not the other, or a
-- default that differs, fails), and that each command's usage line is the
-- one the reference's command table shows.
local help = require "peernet.cli.help"

local doc = "\n" .. H.read_file(H.source_dir .. "/docs/cli.md")

local function unquote(s) return (s:gsub("^%s*`?", ""):gsub("`?%s*$", "")) end

-- The rows of the markdown table that follows heading.
local function table_rows(heading)
  local section = doc:match("\n" .. heading:gsub("%p", "%%%0") .. "\n(.-)\n#")
  assert(section, "docs/cli.md has no section '" .. heading .. "'")
  local rows = {}
  for line in section:gmatch("[^\n]+") do
    if line:match("^|") and not line:match("^|%-") then
      local cells = {}
      for cell in line:gsub("\\|", "\1"):gmatch("|([^|]*)") do cells[#cells + 1] = unquote(cell:gsub("\1", "|")) end
      if cells[#cells] == "" then cells[#cells] = nil end
      rows[#rows + 1] = cells
    end
  end
  table.remove(rows, 1) -- the header
  return rows
end

describe("docs/cli.md and --help", function()
  it("list the same options with the same defaults, both ways", function()
    local want = {}
    local function add(cmd, o)
      want[cmd .. " " .. help.option_label(o)] = help.default_text(o)
    end
    for _, o in ipairs(help.GLOBAL) do add("every command", o) end
    for _, c in ipairs(help.COMMANDS) do
      for _, o in ipairs(c.options or {}) do add(c.name, o) end
    end
    local seen = {}
    for _, r in ipairs(table_rows("## Options")) do
      local id = r[1] .. " " .. r[2]
      assert.is_not_nil(want[id], "docs/cli.md lists " .. id .. ", which help.lua does not have")
      assert.equal(want[id], r[3], "the default of " .. id)
      seen[id] = true
    end
    for id in pairs(want) do assert.is_true(seen[id] == true, "docs/cli.md's Options table lacks " .. id) end
  end)

  it("show each command's usage line", function()
    local usages = {}
    for _, r in ipairs(table_rows("# peernet-host — command reference")) do usages[r[1]] = true end
    for _, c in ipairs(help.COMMANDS) do
      if not c.subcommands then
        assert.is_true(usages[c.usage] == true, "docs/cli.md's command table lacks `" .. c.usage .. "`")
      end
    end
  end)
end)
