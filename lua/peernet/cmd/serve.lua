-- serve: run this host until a signal stops it.
local uv = require "luv"
local peernet = require "peernet"
local control = require "peernet.control"
local format = require "peernet.format"
local datadir = require "peernet.cli.datadir"
local hosts = require "peernet.cli.hosts"
local log = require "peernet.cli.log"
local ops = require "peernet.cli.ops"
local output = require "peernet.cli.output"
local remote = require "peernet.cli.remote"
local settings = require "peernet.cli.settings"
local signals = require "peernet.cli.signals"
local trustedit = require "peernet.cli.trustedit"

local EXIT, out, err, fail = output.EXIT, output.out, output.err, output.fail

local M = {}

local SETTLE_MS = 50 -- host.lua changes: read once the writes have stopped
-- "discovered" events of strangers (anyone on the LAN can forge announces):
-- at most STRANGER_EVENTS in each STRANGER_WINDOW_MS, then one
-- {"event": "suppressed"} saying how many were left out.
local STRANGER_EVENTS, STRANGER_WINDOW_MS = 20, 1000

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

-- The handles a loaded script exposes now.
local function handles_of(rt, file)
  for _, s in ipairs(rt:scripts()) do
    if s.file == file then return s.handles end
  end
  return {}
end

-- The handler scripts: a runtime when this build has one (nil, message
-- when it cannot start or --handlers names no directory). event(t, text)
-- reports scripts that come, change and go after the first load.
local function load_handlers(o, p, h, eff, logger, event)
  local handlers_dir = eff.handlers.value or p.handlers
  local explicit = eff.handlers.source ~= "default"
  if peernet.runtime then
    local rt
    local started = false
    local re
    rt, re = peernet.runtime.new(h, { config = p.config, trust = p.trust, log = logger.log,
      on_script = function(what, file, why)
        if not started then return end -- the first load is the report below
        if what == "failed" then
          event({ event = "failed", file = file, error = why }, nil)
        elseif what == "removed" then
          event({ event = "removed", file = file }, "removed " .. file .. " (its handles are revoked)")
        else
          local hs = handles_of(rt, file)
          event({ event = what, file = file, handles = hs }, ("%s %s: %s"):format(what, file, table.concat(hs, ", ")))
        end
      end })
    if not rt then return nil, "script runtime: " .. tostring(re) end
    if uv.fs_stat(handlers_dir) then
      print_report(rt:load_dir(handlers_dir), o.json)
    elseif explicit then
      rt:close()
      return nil, "no such directory: " .. handlers_dir
    end
    started = true
    return rt
  end
  if explicit then
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

-- The command line's settings, in settings.lua's names.
local function flag_settings(o)
  local f = { listen = o.listen, handlers = o.handlers, log_level = o["log-level"], mdns_instance = o.name }
  if o["no-discovery"] then f.discovery, f.mdns, f.netmon = false, false, false end
  if f.log_level and not log.is_level(f.log_level) then
    return nil, "--log-level must be one of " .. log.choices() .. ", got " .. f.log_level
  end
  if f.mdns_instance and (#f.mdns_instance < 1 or #f.mdns_instance > 63) then
    return nil, "--name must be 1..63 bytes (one DNS label)"
  end
  return f
end

-- host.lua again (SIGHUP, or the file changed): the log level follows at
-- once; the host's settings are fixed while it runs, so a change to them
-- is reported as waiting for the next start. A broken file changes nothing.
local function reloader(path, flags, eff, logger, event)
  return function(why)
    local file, fe = settings.read(path)
    if not file then
      logger.log("error", fe .. " (" .. settings.FILE .. " not applied; the settings in use stay)")
      return
    end
    local now = settings.effective(file, flags)
    logger.set_level(now.log_level.value)
    eff.log_level = now.log_level -- the one setting that follows while serving
    local later = {}
    for _, s in ipairs(settings.list()) do
      if s.name ~= "log_level" and now[s.name].value ~= eff[s.name].value then later[#later + 1] = s.name end
    end
    event({ event = "settings", reason = why, log_level = now.log_level.value, restart_needed = later },
      nil)
    logger.log("info", ("%s re-read (%s): log_level %s%s"):format(path, why, now.log_level.value,
      #later > 0 and "; changed, taking effect when serve restarts: " .. table.concat(later, ", ") or ""))
  end
end

M.serve = {
  run = function(o, p)
    if #o.pos > 0 then return fail("usage", "serve takes no arguments") end
    local flags, flerr = flag_settings(o)
    if not flags then return fail("usage", flerr) end
    if not flags.log_level and os.getenv("PEERNET_DEBUG") then flags.log_level = "debug" end
    local spath = settings.path(p)
    local file, fe = settings.read(spath)
    if not file then return fail("failure", fe) end
    local eff = settings.effective(file, flags)
    local logger = log.new { level = eff.log_level.value, json = o.json }
    -- Every line and event's text also goes to the keys following the log
    -- (peernet-host logs), at their own level.
    local feed
    local write_log = logger.log
    logger.log = function(level, msg)
      msg = log.clean(msg)
      if feed then feed.push(level, msg) end
      write_log(level, msg)
    end
    -- With --json each line is one event object, for supervisors and tools.
    local function event(t, text)
      -- An event's text may be several lines (serving, then the control
      -- socket); each line is cleaned of control characters.
      text = text and (text:gsub("[^\n]+", log.clean))
      if feed and text then feed.push("info", text) end
      if o.json then out(format.json(t)) elseif text then out(text) end
    end

    local hopts = settings.host_options(eff)
    hopts.listen = eff.listen.value
    hopts.log = logger.log
    local h, he = hosts.resident(p, hopts)
    if not h then return fail("failure", he) end
    local listen = eff.listen.value:gsub(":%d+$", "") .. ":" .. h:port()
    local info = { mode = "serve", started = uv.now(), listen = listen }

    local rt, re = load_handlers(o, p, h, eff, logger, event)
    if rt == nil then
      h:close()
      return fail("failure", re)
    end
    info.rt = rt or nil
    feed = remote.serve(h, { p = p, dir = eff.handlers.value or p.handlers, rt = info.rt, logger = logger,
      window_ms = eff.log_window.value })

    local handler = trustedit.wrap(ops.handler(h, p, info), h, p)
    local server, se = control.serve(p.control, function(req, reply)
      -- `peernet-host config` asks the running host what it runs with.
      if req.op == "settings" then return reply { ok = true, file = spath, settings = settings.rows(eff) } end
      handler(req, reply)
    end)
    if not server then
      if info.rt then info.rt:close() end
      h:close()
      return fail("failure", se)
    end
    h:on("connected", function(key) event({ event = "connected", key = key }, "connected " .. key) end)
    h:on("disconnected", function(key, reason)
      feed.stop(key)
      event({ event = "disconnected", key = key, reason = reason },
        "disconnected " .. key .. " (" .. tostring(reason) .. ")")
    end)
    local window, in_window, suppressed = 0, 0, 0
    h:on("discovered", function(key)
      local peer = h:peer(key) or {}
      if not peer.trusted then
        local now = uv.now()
        if now - window >= STRANGER_WINDOW_MS then
          if suppressed > 0 then event({ event = "suppressed", what = "discovered", count = suppressed }, nil) end
          window, in_window, suppressed = now, 0, 0
        end
        in_window = in_window + 1
        if in_window > STRANGER_EVENTS then
          suppressed = suppressed + 1
          return
        end
      end
      event({ event = "discovered", key = key, trusted = peer.trusted == true, addr = peer.addr }, nil)
    end)

    -- host.lua is re-read on SIGHUP and when it changes.
    local reread = reloader(spath, flags, eff, logger, event)
    local hup = uv.new_signal()
    hup:start("sighup", function() reread("SIGHUP") end)
    -- host.lua, and config.lua (whose grants the runtime follows at every
    -- host.* call) read now so that a broken one is reported as it is
    -- saved. An editor's save is several events: read once they settle.
    local watch, settle, changed = uv.new_fs_event(), uv.new_timer(), {}
    local config_file = p.config:match("[^/]+$")
    watch:start(p.dir, {}, function(_, name)
      if name ~= settings.FILE and name ~= config_file then return end
      changed[name] = true
      settle:start(SETTLE_MS, 0, function()
        if changed[settings.FILE] then reread("changed") end
        if changed[config_file] and info.rt then info.rt:config_changed() end
        changed = {}
      end)
    end)

    local stop_signals
    stop_signals = signals.on_stop(false, function(name)
      event({ event = "stopping", signal = name }, "stopping (" .. name .. ")")
      peernet.notify("STOPPING=1")
      server.close()
      hup:close()
      watch:close()
      settle:close()
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
