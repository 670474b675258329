-- An admin module: the functions a phone may run on this device through
-- beam_admin ({rpc, Device, Function, Args} from Elixir, or
-- peernet.admin.call(device, "Device", "status", {}) from Lua).
local M = {}

local started = os.time()
local volume = 5

function M.status()
  return { uptime = os.time() - started, volume = volume }
end

function M.set_volume(v)
  if math.type(v) ~= "integer" or v < 0 or v > 10 then
    return nil, peernet.atom("badarg")
  end
  volume = v
  return volume
end

return M
