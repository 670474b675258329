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
local options = require "peernet.cli.options"
local output = require "peernet.cli.output"

local EXIT, out, fail = output.EXIT, output.out, output.fail

local M = {}

M.EXIT = EXIT

-- The groups of commands, and the order --help lists them in.
local GROUPS = { "keys", "trust", "serve", "run", "call", "peers", "bench" }
local ORDER = { "init", "id", "trust", "serve", "run", "call", "send", "peers", "status", "check", "bench" }

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

-- The options before the command (--data-dir, --json) go into pre; a
-- return value means the run ends here with that exit code.
local function global_options(argv, pre)
  local i = 1
  while argv[i] and argv[i]:match("^%-") do
    local a = argv[i]
    if a == "--version" then out(help.version()) return nil, EXIT.ok end
    if a == "--help" or a == "-h" then out(help.text(commands, ORDER)) return nil, EXIT.ok end
    if a == "--data-dir" then
      if not argv[i + 1] then return nil, fail("usage", "--data-dir needs a value") end
      pre["data-dir"] = argv[i + 1]
      i = i + 2
    elseif a:match("^%-%-data%-dir=") then
      pre["data-dir"] = a:match("=(.*)$")
      i = i + 1
    elseif a == "--json" then
      pre.json = true
      i = i + 1
    else
      return nil, fail("usage", "unknown option " .. a .. " (try --help)")
    end
  end
  return i
end

local function dispatch(argv)
  local argv0 = (argv[0] or "peernet-host"):match("[^/]*$")
  local pre = {}
  local i, code = global_options(argv, pre)
  if not i then return code end
  local name = argv[i]
  if not name then
    io.stderr:write(help.text(commands, ORDER), "\n")
    return EXIT.usage
  end
  if name == "help" then
    local c = commands[argv[i + 1] or ""]
    out(c and help.usage(c) or help.text(commands, ORDER))
    return EXIT.ok
  end
  if name == "version" then out(help.version()) return EXIT.ok end
  local cmd = commands[name]
  if not cmd then return fail("usage", "unknown command '" .. name .. "' (try --help)") end
  local o, pe = options.parse(argv, i + 1, cmd)
  if not o then return fail("usage", name .. ": " .. pe .. " (peernet-host " .. name .. " --help)") end
  for k, v in pairs(pre) do if o[k] == nil then o[k] = v end end
  if o.help then
    out(help.command(cmd))
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
