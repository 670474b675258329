-- test: the user's handler specs, run by the built-in runner (peernet.testing.runner).
local format = require "peernet.format"
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
    local r = runner.run(files, function(line)
      if not o.json then io.stderr:write(line, "\n") end
    end)
    if o.json then
      local failures = {}
      for i, f in ipairs(r.failures) do failures[i] = format.shaped("spec_failure", f) end
      out(format.json { ok = r.failed == 0, passed = r.passed, failed = r.failed,
        pending = r.pending, files = r.files, failures = failures })
    else
      out(runner.summary(r))
    end
    return r.failed == 0 and EXIT.ok or EXIT.failure
  end,
}

return M
