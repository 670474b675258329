-- The phone's side, as a run script (an Elixir app would do the same with
-- PeerNet.call(device, :beam_admin, {:rpc, Device, :status, []})).
--
--   peernet-host run examples/phone_admin/phone.lua DEVICE [VOLUME [HOST:PORT]]
local device, volume = arg[1], tonumber(arg[2])
if not device then
  io.stderr:write("usage: peernet-host run phone.lua DEVICE [VOLUME]\n")
  os.exit(2)
end

-- Walkie-talkie: calls need a live link, so dial first (the address comes
-- from trust.list, or give it: peernet.connect(device, "HOST:PORT")).
assert(peernet.connect(device, arg[3]))

local status, err = peernet.admin.call(device, "Device", "status", {})
if not status then error("status: " .. tostring(err)) end
print(("device up %ds, volume %d"):format(status.uptime, status.volume))

if volume then
  local v, why = peernet.admin.call(device, "Device", "set_volume", { volume })
  print(v and ("volume set to " .. v) or ("refused: " .. tostring(why)))
end
