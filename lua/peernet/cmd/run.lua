-- run and check: trusted scripts and the handler script check for CI.
local uv = require "luv"
local peernet = require "peernet"
local control = require "peernet.control"
local format = require "peernet.format"
local datadir = require "peernet.cli.datadir"
local hosts = require "peernet.cli.hosts"
local ops = require "peernet.cli.ops"
local trustedit = require "peernet.cli.trustedit"
local output = require "peernet.cli.output"
local signals = require "peernet.cli.signals"

local EXIT, out, fail = output.EXIT, output.out, output.fail

local M = {}

local function need_runtime(what)
  if peernet.runtime then return true end
  return nil, what .. " needs the script runtime (peernet.runtime), which this build does not have"
end

M.run = {
  summary = "run a trusted Lua script with the peernet API and luv",
  usage = "run [--listen ADDR:PORT] SCRIPT.lua [ARGS...]",
  opts = { listen = "value" },
  stop = true,
  run = function(o, p, argv0)
    local script = o.pos[1]
    if not script then return fail("usage", "usage: peernet-host run SCRIPT.lua [ARGS...]") end
    local okr, re = need_runtime("run")
    if not okr then return fail("failure", re) end
    local chunk, le = loadfile(script, "t")
    if not chunk then return fail("failure", le) end
    local h, he = hosts.resident(p, { listen = o.listen or false, weak = true },
      " (use `peernet-host call`, or another --data-dir)")
    if not h then return fail("failure", he) end
    local code = EXIT.ok
    local rt, rte = peernet.runtime.new(h, {
      config = datadir.config(p),
      trust = p.trust,
      on_error = function(msg)
        io.stderr:write(tostring(msg), "\n")
        code = EXIT.failure
        uv.stop()
      end,
    })
    if not rt then
      h:close()
      return fail("failure", "script runtime: " .. tostring(rte))
    end
    -- Why a link closed is worth a line even here: the script's output is
    -- stdout, so it goes to stderr, as the host's own log lines do.
    h:on("disconnected", function(key, reason)
      io.stderr:write("peernet [info] disconnected ", key, " (", tostring(reason), ")\n")
    end)
    local info = { mode = "run", started = uv.now(), rt = rt,
      listen = o.listen and (o.listen:gsub(":%d+$", "") .. ":" .. h:port()) or nil }
    local server = control.serve(p.control, trustedit.wrap(ops.handler(h, p, info), h, p), { weak = true })
    -- `arg` as lua(1) sets it: the script at 0, its arguments from 1.
    local script_args = { [0] = script, [-1] = argv0 .. " run" }
    for i = 2, #o.pos do script_args[i - 1] = o.pos[i] end
    _G.arg = script_args
    -- One table: the script's global and its require "peernet" (rt:api()
    -- falls back to the module for peernet.host and the rest).
    _G.peernet = rt:api()
    package.loaded.peernet = _G.peernet
    -- The script's print() goes out a line at a time, as under lua(1).
    io.stdout:setvbuf("line")
    local stop_signals = signals.on_stop(true, function()
      if server then server.close() end
      rt:drain(signals.DRAIN_MS, function() uv.stop() end)
    end)
    rt:spawn(chunk, table.unpack(script_args, 1, #script_args))
    uv.run()
    stop_signals()
    if server then server.close() end
    rt:close()
    h:close()
    return code
  end,
}

M.check = {
  summary = "load handler scripts in the sandbox and report errors (for CI)",
  usage = "check SCRIPT.lua... [--json]",
  run = function(o, p)
    if #o.pos == 0 then return fail("usage", "usage: peernet-host check SCRIPT.lua...") end
    local okr, re = need_runtime("check")
    if not okr then return fail("failure", re) end
    local results, failed = {}, 0
    local config = datadir.config(p)
    for i, file in ipairs(o.pos) do
      local ok, ce = peernet.runtime.check(file, { config = config })
      results[i] = { file = file, ok = ok == true, error = ce }
      if not ok then failed = failed + 1 end
    end
    if o.json then
      out(format.json(results))
    else
      for _, r in ipairs(results) do
        if r.ok then out(r.file, ": ok") else io.stderr:write(tostring(r.error), "\n") end
      end
    end
    return failed == 0 and EXIT.ok or EXIT.failure
  end,
}

return M
