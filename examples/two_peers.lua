-- Two PeerNet peers in one process, talking over real TCP on 127.0.0.1:
-- each has its own X25519 identity, they trust each other's key, run the
-- Noise XX handshake, and one calls a handler exposed by the other.
--
--   lua5.4 examples/two_peers.lua        (after scripts/setup)
local dir = (arg and arg[0] or ""):match("^(.*)/") or "."
package.cpath = (os.getenv("PN_BUILD_DIR") or (dir .. "/../build")) .. "/?.so;" .. package.cpath
local peernet = require "peernet"
local uv = require "luv"

local lamp_keys, phone_keys = peernet.keys.generate(), peernet.keys.generate()
local lamp = assert(peernet.host.new { secret = lamp_keys:secret(), listen = "127.0.0.1:0" })
local phone = assert(peernet.host.new { secret = phone_keys:secret(), listen = false })
print("lamp  " .. lamp:key() .. " listening on 127.0.0.1:" .. lamp:port())
print("phone " .. phone:key())

-- Default deny: only keys on the trust list get through the handshake.
lamp:trust(phone:key())
phone:trust(lamp:key())

local on = false
lamp:expose("lights.toggle", function(from, args)
  on = not on
  return { on = on, by = from:sub(1, 8), room = args.room }
end)

phone:connect(lamp:key(), "127.0.0.1:" .. lamp:port(), function(ok, err)
  assert(ok, err)
  print("phone connected to lamp (Noise XX done)")
  phone:call(lamp:key(), "lights.toggle", { room = "kitchen" }, function(ok2, reply, kind)
    assert(ok2, tostring(reply) .. " " .. tostring(kind))
    print(("lamp says: on=%s by=%s room=%s"):format(tostring(reply.on), reply.by, reply.room))
    phone:call(lamp:key(), "lights.dim", {}, function(_, reason)
      print("calling a handle nobody exposed: " .. tostring(reason))
      phone:close()
      lamp:close()
    end)
  end)
end)

uv.run()
