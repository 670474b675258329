-- Regenerates the seeds of fuzz/corpus/noise_responder and noise_initiator
-- from vectors/peernet_wire_v1.json (run from the repository root):
--     lua5.4 fuzz/gen_noise_seeds.lua [vectors-dir]
-- A seed is the peer's side of a connection as wire bytes (u32 BE length ||
-- body, repeated), the input format of fuzz/fuzz_noise_*.c.
local json = require "dkjson"

local dir = arg[1] or os.getenv("PN_VECTORS") or "../shared/vectors"
local f = assert(io.open(dir .. "/peernet_wire_v1.json", "rb"))
local w = assert(json.decode(f:read("a")))
f:close()

local function unhex(s) return (s:gsub("..", function(b) return string.char(tonumber(b, 16)) end)) end
local function wire(hex) return unhex(hex) end
local function frame(body) return string.pack(">s4", body) end
local function body(hex) return (string.unpack(">s4", unhex(hex))) end
local function flip(s, pos) return s:sub(1, pos - 1) .. string.char(s:byte(pos) ~ 1) .. s:sub(pos + 1) end

local HS, T = w.handshake, w.transport_frames
local function transport(direction)
  local out = {}
  for _, t in ipairs(T) do
    if t.direction == direction then out[#out + 1] = wire(t.wire_hex) end
  end
  return table.concat(out)
end
local zero_m1 = frame("\x83\x6d\0\0\0\x20" .. string.rep("\0", 32))

local seeds = {
  noise_responder = {
    transcript = wire(HS.m1.wire_hex) .. wire(HS.m3.wire_hex) .. transport("initiator_to_responder"),
    m1_only = wire(HS.m1.wire_hex),
    m3_bad_tag = wire(HS.m1.wire_hex) .. frame(flip(body(HS.m3.wire_hex), 70)),
    transport_bad_tag = wire(HS.m1.wire_hex) .. wire(HS.m3.wire_hex)
      .. frame(flip(body(T[1].wire_hex), 1)),
    m1_low_order = zero_m1,
    m1_short = frame(body(HS.m1.wire_hex):sub(1, 37)),
  },
  noise_initiator = {
    transcript = wire(HS.m2.wire_hex) .. transport("responder_to_initiator"),
    m2_only = wire(HS.m2.wire_hex),
    m2_bad_tag = frame(flip(body(HS.m2.wire_hex), 102)),
    m2_low_order_e = frame(body(HS.m2.wire_hex):sub(1, 6)
      .. unhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157")
      .. body(HS.m2.wire_hex):sub(39)),
    transport_replay = wire(HS.m2.wire_hex) .. wire(T[2].wire_hex) .. wire(T[2].wire_hex),
    m2_long = frame(body(HS.m2.wire_hex) .. "\0"),
  },
}

for target, files in pairs(seeds) do
  for name, bytes in pairs(files) do
    local path = "fuzz/corpus/" .. target .. "/" .. name
    local out = assert(io.open(path, "wb"))
    out:write(bytes)
    out:close()
    print(path, #bytes)
  end
end
