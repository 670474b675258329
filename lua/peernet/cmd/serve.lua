-- serve: run this host until a signal stops it.
local uv = require "luv"
local peernet = require "peernet"
local control = require "peernet.control"
local format = require "peernet.format"
local datadir = require "peernet.cli.datadir"
local hosts = require "peernet.cli.hosts"
local ops = require "peernet.cli.ops"
local output = require "peernet.cli.output"
local signals = require "peernet.cli.signals"

local EXIT, out, err, fail = output.EXIT, output.out, output.err, output.fail

local M = {}

local DEFAULT_LISTEN = "[::]:4040"

-- Prints what loading the handler scripts gave; returns how many failed.
local function print_report(report, json)
  local failed = 0
  for _, s in ipairs(report or {}) do
    if json then
      out(format.json { event = s.ok and "loaded" or "failed", file = s.file, handles = s.handles,
        error = s.err })
    end
    if s.ok then
      if not json then out(("loaded %s: %s"):format(s.file, table.concat(s.handles or {}, ", "))) end
    else
      failed = failed + 1
      err("handler script failed: ", tostring(s.err))
    end
  end
  return failed
end

-- The handler scripts: a runtime when this build has one (nil, message
-- when it cannot start or --handlers names no directory).
local function load_handlers(o, p, h)
  local handlers_dir = o.handlers or p.handlers
  if peernet.runtime then
    local rt, re = peernet.runtime.new(h, { config = datadir.config(p), trust = p.trust })
    if not rt then return nil, "script runtime: " .. tostring(re) end
    if uv.fs_stat(handlers_dir) then
      print_report(rt:load_dir(handlers_dir), o.json)
    elseif o.handlers then
      rt:close()
      return nil, "no such directory: " .. handlers_dir
    end
    return rt
  end
  if o.handlers then
    return nil, "--handlers needs the script runtime (peernet.runtime), not in this build"
  end
  local names = uv.fs_scandir(handlers_dir) and {} or nil
  if names then
    for name in uv.fs_scandir_next, uv.fs_scandir(handlers_dir) do
      if name:match("%.lua$") then names[#names + 1] = name end
    end
    if #names > 0 then
      err("warning: ", handlers_dir, " has scripts but this build has no script runtime; not loaded")
    end
  end
  return false
end

M.serve = {
  summary = "run this host: listen, follow the trust list, serve handler scripts",
  usage = "serve [--handlers DIR] [--listen ADDR:PORT] [--no-discovery] [--json]",
  opts = { handlers = "value", listen = "value", ["no-discovery"] = "flag" },
  run = function(o, p)
    if #o.pos > 0 then return fail("usage", "serve takes no arguments") end
    -- LAN discovery (UDP announce, mDNS) and the network monitor, unless asked not to.
    local discover = not o["no-discovery"]
    local h, he = hosts.resident(p, { listen = o.listen, discovery = discover, mdns = discover,
      netmon = discover })
    if not h then return fail("failure", he) end
    local listen = (o.listen or DEFAULT_LISTEN):gsub(":%d+$", "") .. ":" .. h:port()
    local info = { mode = "serve", started = uv.now(), listen = listen }

    local rt, re = load_handlers(o, p, h)
    if rt == nil then
      h:close()
      return fail("failure", re)
    end
    info.rt = rt or nil

    local server, se = control.serve(p.control, ops.handler(h, p, info))
    if not server then
      if info.rt then info.rt:close() end
      h:close()
      return fail("failure", se)
    end
    -- With --json each line is one event object, for supervisors and tools.
    local function event(t, text)
      if o.json then out(format.json(t)) else out(text) end
    end
    h:on("connected", function(key) event({ event = "connected", key = key }, "connected " .. key) end)
    h:on("disconnected", function(key, reason)
      event({ event = "disconnected", key = key, reason = reason },
        "disconnected " .. key .. " (" .. tostring(reason) .. ")")
    end)

    local stop_signals
    stop_signals = signals.on_stop(false, function(name)
      event({ event = "stopping", signal = name }, "stopping (" .. name .. ")")
      peernet.notify("STOPPING=1")
      server.close()
      local function finish()
        if info.rt then info.rt:close() end
        h:close()
        stop_signals()
      end
      if info.rt then info.rt:drain(signals.DRAIN_MS, finish) else finish() end
    end)
    -- Only now that the signals are handled: a supervisor may signal right after.
    event({ event = "serving", key = h:key(), listen = listen, control = p.control },
      "serving " .. h:key() .. " on " .. listen .. "\ncontrol socket " .. p.control)
    peernet.notify("READY=1") -- Type=notify units (packaging/peernet-host.service.in)
    uv.run()
    server.close()
    return EXIT.ok
  end,
}

return M
