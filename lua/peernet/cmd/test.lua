-- test: the user's handler specs, run by the built-in runner (peernet.testing.runner).
local output = require "peernet.cli.output"
local runner = require "peernet.testing.runner"

local EXIT, out, fail = output.EXIT, output.out, output.fail

local M = {}

M.test = {
  run = function(o)
    local dir = o.pos[1] or "spec"
    if #o.pos > 1 then return fail("usage", "usage: peernet-host test [SPEC_DIR]") end
    local files = runner.files(dir)
    if #files == 0 then return fail("failure", "no *_spec.lua files in " .. dir) end
    local r = runner.run(files, function(line) io.stderr:write(line, "\n") end)
    out(runner.summary(r))
    return r.failed == 0 and EXIT.ok or EXIT.failure
  end,
}

return M
