-- peernet-host's command line (DESIGN.md "CLI"; the reference is
-- docs/cli.md): reads the global options, picks the command, parses its
-- options and returns its exit code. The commands live in
-- lua/peernet/cmd/, one file per group; what they share in
-- lua/peernet/cli/.
--
-- src/main.c runs M.main(arg) in a state with the full standard library,
-- luv on the executable's loop and the peernet module. At exit it closes
-- the hosts and runtimes still open (their constructors registered them,
-- src/luamod/live.h), then calls M.close_handles() for luv's, so that
-- nothing is pending at lua_close.
local uv = require "luv"
local datadir = require "peernet.cli.datadir"
local help = require "peernet.cli.help"
local format = require "peernet.format"
local options = require "peernet.cli.options"
local output = require "peernet.cli.output"

local EXIT, out, fail = output.EXIT, output.out, output.fail

local M = {}

M.EXIT = EXIT

-- The groups of commands (their usage, summary and options are
-- lua/peernet/cli/help.lua's table).
local GROUPS = { "keys", "trust", "serve", "config", "run", "call", "remote", "peers", "bench", "test" }

local commands = {}
for _, group in ipairs(GROUPS) do
  for name, cmd in pairs(require("peernet.cmd." .. group)) do commands[name] = cmd end
end

-- Only once no host handle is open (luv's walk must see luv handles only).
function M.close_handles()
  uv.walk(function(h)
    if not h:is_closing() then h:close() end
  end)
end

-- Was --json given? Looked for before anything is parsed, so that even a
-- usage error is one JSON object on stdout. Options end at `--` (and, for
-- run, at the script: what follows is the script's).
local function wants_json(argv)
  local stop = false
  for j = 1, #argv do
    local a = argv[j]
    if a == "--" then return false end
    if a == "--json" then return true end
    if not a:match("^%-") then
      if stop then return false end
      stop = a == "run"
    end
  end
  return false
end

local function print_version(json)
  if json then out(format.json(help.version_table())) else out(help.version()) end
  return EXIT.ok
end

-- The options before the command (--data-dir, --json) go into pre; a
-- return value means the run ends here with that exit code.
local function global_options(argv, pre)
  local i = 1
  while argv[i] and argv[i]:match("^%-") do
    local a = argv[i]
    if a == "--version" then return nil, print_version(pre.json) end
    if a == "--help" or a == "-h" then out(help.text()) return nil, EXIT.ok end
    if a == "--data-dir" then
      if not argv[i + 1] then return nil, fail("usage", "--data-dir needs a value") end
      pre["data-dir"] = argv[i + 1]
      i = i + 2
    elseif a:match("^%-%-data%-dir=") then
      pre["data-dir"] = a:match("=(.*)$")
      i = i + 1
    elseif a == "--json" then
      i = i + 1
    else
      return nil, fail("usage", "unknown option " .. a .. " (try --help)")
    end
  end
  return i
end

local function unknown_command(name)
  local near = help.suggest(name)
  return fail("usage", "unknown command '" .. name .. "'"
    .. (near and (" (did you mean '" .. near .. "'? peernet-host --help lists them)") or " (try --help)"))
end

local function dispatch(argv)
  local argv0 = (argv[0] or "peernet-host"):match("[^/]*$")
  local pre = { json = wants_json(argv) or nil }
  output.set_json(pre.json)
  local i, code = global_options(argv, pre)
  if not i then return code end
  local name = argv[i]
  if not name then
    if pre.json then return fail("usage", "no command (peernet-host --help lists them)") end
    io.stderr:write(help.text(), "\n")
    return EXIT.usage
  end
  if name == "help" then
    local topic = argv[i + 1] and table.concat({ argv[i + 1], argv[i + 2] }, " ")
    local c = topic and (help.find(topic) or help.find(argv[i + 1]))
    if topic and not c then return unknown_command(argv[i + 1]) end
    out(c and help.command(c.name) or help.text())
    return EXIT.ok
  end
  if name == "version" then return print_version(pre.json) end
  local cmd = commands[name]
  if not cmd or not help.find(name) then return unknown_command(name) end
  local o, pe = options.parse(argv, i + 1, help.spec(name))
  if not o then return fail("usage", name .. ": " .. pe .. " (peernet-host " .. name .. " --help)") end
  for k, v in pairs(pre) do if o[k] == nil then o[k] = v end end
  if o.help then
    -- trust add --help: the subcommand's own text.
    local sub = o.pos[1] and help.find(name .. " " .. o.pos[1])
    out(help.command(sub and sub.name or name))
    return EXIT.ok
  end
  local dir, de = o["data-dir"], nil
  if not dir then dir, de = datadir.default() end
  if not dir then return fail("usage", de) end
  return cmd.run(o, datadir.paths(dir), argv0)
end

function M.main(argv)
  output.start()
  return output.finish(dispatch(argv))
end

return M
