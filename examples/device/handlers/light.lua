-- A light on a device, simulated by a file, plus an automation.
-- Install: copy this directory to <data_dir>/handlers and device/config.lua to
-- <data_dir>/config.lua (it grants this script the write it needs), then
--   peernet-host serve
-- From another peer:  peernet-host call DEVICE light.toggle
--
-- Without the grant, host.write fails with "not permitted".
local DEVICE = "/tmp/peernet-demo/light" -- the file the grant in config.lua names

local state = "off"

local function set(v)
  local ok, err = host.write(DEVICE, v .. "\n")
  if not ok then return nil, err end
  state = v
  peernet.log.info("light is %s", v)
  return v
end

peernet.expose("light.get", function() return state end)
peernet.expose("light.toggle", function() return set(state == "on" and "off" or "on") end)
peernet.expose("light.set", function(from, v)
  if v ~= "on" and v ~= "off" then return nil, peernet.atom("badarg") end
  return set(v)
end)

-- On for a while: light.on_for(ms) switches it on, and a timer switches it
-- off again (a later on_for replaces the pending one).
local off_timer
peernet.expose("light.on_for", function(from, ms)
  if math.type(ms) ~= "integer" or ms < 1 or ms > 86400000 then return nil, peernet.atom("badarg") end
  if off_timer then off_timer:cancel() end
  off_timer = peernet.after(ms, function()
    off_timer = nil
    set("off")
  end)
  return set("on")
end)

-- Automation: when a trusted peer arrives, tell it how the light is
-- (walkie-talkie: if it has no `notify` handle, nothing happens).
--
-- It does not switch the light: `connected` is a new link, not a person
-- arriving. Every `peernet-host call` from another data dir with no host
-- running there starts a short-lived host, so each command is a new
-- connection; an automation that switched the light on here would switch
-- it back on at the next command, and `light.toggle` to off would never
-- stick. Something that should happen once belongs behind a handle
-- (light.set) or a timer, not on `connected`.
peernet.on("connected", function(key)
  peernet.send(key, "notify", "the light is " .. state)
end)
