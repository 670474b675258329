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

-- Automation: when a trusted peer arrives, switch the light on and tell it
-- (walkie-talkie: if it has no `notify` handle, nothing happens).
peernet.on("connected", function(key)
  set("on")
  peernet.send(key, "notify", "welcome, the light is on")
end)
