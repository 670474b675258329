-- peernet.handshake: the PeerNet handshake on frame bodies (ETF-wrapped
-- Noise XX messages) and the transport after it, against the golden wire
-- transcript of the Elixir reference, each side driven alone.
local peernet = require "peernet"
local handshake, noise = peernet.handshake, peernet.noise
local unhex, hex = H.unhex, H.hex

local W = H.vector_file("peernet_wire_v1.json")
local K, HS, FRAMES = W.keys, W.handshake, W.transport_frames

-- wire = u32 BE length || body
local function wire(body) return string.pack(">s4", body) end
local function body_of(wire_hex)
  local w = unhex(wire_hex)
  local body, next_pos = string.unpack(">s4", w)
  assert(next_pos == #w + 1, "trailing bytes after the frame")
  return body
end

-- Plays all five recorded transport frames on one side: the side's own
-- frames must seal to the recorded wire bytes at the recorded counter, the
-- other side's must open to the recorded plaintext.
local function check_transport(side, outgoing)
  for n, f in ipairs(FRAMES) do
    local send, recv = side:nonces()
    if f.direction == outgoing then
      assert.equal(f.nonce_counter, send, "frame " .. n)
      assert.equal(f.wire_hex, hex(wire(assert(side:seal(unhex(f.plaintext_etf_hex))))), "frame " .. n)
    else
      assert.equal(f.nonce_counter, recv, "frame " .. n)
      assert.equal(f.plaintext_etf_hex, hex(assert(side:open(body_of(f.wire_hex)))), "frame " .. n)
    end
  end
end

local function new(role, extra)
  local o = {
    role = role,
    static = unhex(K[role .. "_static_priv"]),
    ephemeral = unhex(K[role .. "_ephemeral_priv"]),
    verify = function() return true end,
  }
  for k, v in pairs(extra or {}) do o[k] = v end
  return assert(handshake.new(o))
end

local function refused(code, ...)
  local v, msg, _, c = ...
  assert.is_nil(v)
  assert.is_string(msg)
  assert.equal(code, c, msg)
end

local function flip(s, pos, mask)
  return s:sub(1, pos - 1) .. string.char(s:byte(pos) ~ (mask or 1)) .. s:sub(pos + 1)
end

-- Brings a side to the point where it must read `upto` ("m2" for the
-- initiator, "m1" or "m3" for the responder).
local function initiator_at_m2(extra)
  local i = new("initiator", extra)
  assert(i:write())
  return i
end
local function responder_at_m3(extra)
  local r = new("responder", extra)
  assert(r:read(body_of(HS.m1.wire_hex)))
  assert(r:write())
  return r
end

describe("peernet.handshake wire transcript", function()
  it("has the documented body sizes", function()
    assert.equal(38, handshake.M1_BODY)
    assert.equal(102, handshake.M2_BODY)
    assert.equal(70, handshake.M3_BODY)
    assert.equal(1048576, handshake.TRANSPORT_BODY_MAX)
    assert.equal(16, handshake.TAG)
    assert.equal(HS.m1.wire_len, 4 + handshake.M1_BODY)
    assert.equal(HS.m2.wire_len, 4 + handshake.M2_BODY)
    assert.equal(HS.m3.wire_len, 4 + handshake.M3_BODY)
  end)

  it("reproduces every recorded value from the initiator's side", function()
    local seen = {}
    local i = new("initiator", { verify = function(k) seen[#seen + 1] = hex(k); return true end })
    assert.equal(HS.initial_h_and_ck, hex(i:handshake_hash()))
    assert.equal(HS.initial_h_and_ck, hex(i:chaining_key()))
    assert.equal("write", i:next())

    local m1 = assert(i:write())
    assert.equal("\x83\x6d\0\0\0\x20", m1:sub(1, 6))
    assert.equal(HS.m1.wire_hex, hex(wire(m1)))
    assert.equal(HS.m1.raw_hex, hex(m1:sub(7)))
    assert.equal(HS.m1.h_after_hex, hex(i:handshake_hash()))
    assert.equal(HS.m1.ck_after_hex, hex(i:chaining_key()))
    assert.equal("read", i:next())

    assert.is_true(i:read(body_of(HS.m2.wire_hex)))
    assert.equal(HS.m2.h_after_hex, hex(i:handshake_hash()))
    assert.equal(HS.m2.ck_after_hex, hex(i:chaining_key()))
    assert.same({ K.responder_static_pub }, seen)
    assert.equal(K.responder_static_pub, hex(i:remote_static()))
    assert.equal("write", i:next())

    local m3 = assert(i:write())
    assert.equal(HS.m3.wire_hex, hex(wire(m3)))
    assert.equal("done", i:next())
    assert.is_true(i:is_done())
    assert.equal(HS.final_h_hex, hex(i:handshake_hash()))
    assert.equal(HS.final_ck_hex, hex(i:chaining_key()))

    check_transport(i, "initiator_to_responder")
    assert.same({ 3, 2 }, { i:nonces() })
  end)

  it("reproduces every recorded value from the responder's side", function()
    local seen = {}
    local r = new("responder", { verify = function(k) seen[#seen + 1] = hex(k); return true end })
    assert.equal("read", r:next())
    assert.is_true(r:read(body_of(HS.m1.wire_hex)))
    assert.equal(HS.m1.h_after_hex, hex(r:handshake_hash()))
    assert.equal(HS.m1.ck_after_hex, hex(r:chaining_key()))
    assert.equal("write", r:next())

    local m2 = assert(r:write())
    assert.equal("\x83\x6d\0\0\0\x60", m2:sub(1, 6))
    assert.equal(HS.m2.wire_hex, hex(wire(m2)))
    assert.equal(HS.m2.h_after_hex, hex(r:handshake_hash()))
    assert.equal(HS.m2.ck_after_hex, hex(r:chaining_key()))
    assert.same({}, seen)
    assert.equal("read", r:next())

    assert.is_true(r:read(body_of(HS.m3.wire_hex)))
    assert.same({ K.initiator_static_pub }, seen)
    assert.equal(K.initiator_static_pub, hex(r:remote_static()))
    assert.is_true(r:is_done())
    assert.equal(HS.final_h_hex, hex(r:handshake_hash()))
    assert.equal(HS.final_ck_hex, hex(r:chaining_key()))

    check_transport(r, "responder_to_initiator")
    assert.same({ 2, 3 }, { r:nonces() })
  end)

  it("derives the recorded split keys (initiator tx = k1, rx = k2)", function()
    -- every transport frame is the recorded key's encryption at its counter
    local by_dir = {
      initiator_to_responder = noise.cipher(unhex(HS.initiator_tx_key_hex)),
      responder_to_initiator = noise.cipher(unhex(HS.initiator_rx_key_hex)),
    }
    for n, f in ipairs(FRAMES) do
      local c = by_dir[f.direction]
      assert.equal(f.nonce_counter, c:nonce())
      assert.equal(f.wire_hex, hex(wire(c:encrypt(unhex(f.plaintext_etf_hex)))), "frame " .. n)
    end
    -- and the handshake's own transport uses exactly those keys
    local i, r = new("initiator"), new("responder")
    assert(r:read(assert(i:write())))
    assert(i:read(assert(r:write())))
    assert(r:read(assert(i:write())))
    local probe = "split probe"
    assert.equal(hex(noise.cipher(unhex(HS.initiator_tx_key_hex)):encrypt(probe)), hex(i:seal(probe)))
    assert.equal(hex(noise.cipher(unhex(HS.initiator_rx_key_hex)):encrypt(probe)), hex(r:seal(probe)))
  end)

  it("completes between two instances with random ephemerals", function()
    local ik, rk = string.rep("\5", 32), string.rep("\6", 32)
    local i = assert(handshake.new { role = "initiator", static = ik, verify = function() return true end })
    local r = assert(handshake.new { role = "responder", static = rk, verify = function() return true end })
    while not (i:is_done() and r:is_done()) do
      if i:next() == "write" then assert(r:read(assert(i:write()))) end
      if r:next() == "write" then assert(i:read(assert(r:write()))) end
    end
    assert.equal(hex(i:handshake_hash()), hex(r:handshake_hash()))
    assert.not_equal(HS.final_h_hex, hex(i:handshake_hash()))
    for n = 1, 3 do
      assert.equal("ping " .. n, r:open(assert(i:seal("ping " .. n))))
      assert.equal("pong " .. n, i:open(assert(r:seal("pong " .. n))))
    end
  end)
end)

describe("peernet.handshake refusals", function()
  local m1, m2, m3 = body_of(HS.m1.wire_hex), body_of(HS.m2.wire_hex), body_of(HS.m3.wire_hex)

  local function assert_dead(hs)
    assert.equal("failed", hs:next())
    assert.is_false(hs:is_done())
    refused("estate", hs:write())
    refused("estate", hs:read(m1))
    refused("estate", hs:seal("x"))
    refused("estate", hs:chaining_key())
  end

  it("refuses M1 bodies of the wrong size or ETF header before any crypto", function()
    local bad = {
      empty = "",
      short = m1:sub(1, 37),
      long = m1 .. "\0",
      raw_without_etf = m1:sub(7),
      wrong_version = "\x84" .. m1:sub(2),
      not_binary = "\x83\x6b" .. m1:sub(3), -- STRING_EXT
      wrong_length_field = "\x83\x6d\0\0\0\x21" .. m1:sub(7),
      huge_length_field = "\x83\x6d\xff\xff\xff\xff" .. m1:sub(7),
      m2_body = m2,
    }
    for name, body in pairs(bad) do
      local r = new("responder")
      local v, msg, _, code = r:read(body)
      assert.is_nil(v, name)
      assert.equal("einval", code, name .. ": " .. tostring(msg))
      assert_dead(r)
    end
  end)

  it("refuses M2 and M3 bodies of the wrong size or ETF header", function()
    for name, body in pairs {
      short = m2:sub(1, 101),
      long = m2 .. "\0",
      m1_body = m1,
      wrong_length_field = "\x83\x6d\0\0\0\x5f" .. m2:sub(7),
      wrong_tag = "\x83\x6c" .. m2:sub(3),
    } do
      local i = initiator_at_m2()
      local v, msg, _, code = i:read(body)
      assert.is_nil(v, name)
      assert.equal("einval", code, name .. ": " .. tostring(msg))
      assert_dead(i)
    end
    for name, body in pairs {
      short = m3:sub(1, 69),
      long = m3 .. "\0",
      m2_body = m2,
      wrong_length_field = "\x83\x6d\0\0\0\x41" .. m3:sub(7),
      wrong_version = "\x00" .. m3:sub(2),
    } do
      local r = responder_at_m3()
      local v, msg, _, code = r:read(body)
      assert.is_nil(v, name)
      assert.equal("einval", code, name .. ": " .. tostring(msg))
      assert_dead(r)
    end
  end)

  it("refuses a flipped tag byte in M2 with eauth and is dead afterwards", function()
    -- body offsets: 6 header, 32 e, 32+16 enc(s), 16 payload tag
    for _, pos in ipairs { 6 + 33, 6 + 64, 6 + 65, 6 + 80, 6 + 81, 6 + 96 } do
      local i = initiator_at_m2()
      local v, msg, _, code = i:read(flip(m2, pos))
      assert.is_nil(v)
      assert.equal("eauth", code, pos .. ": " .. tostring(msg))
      assert_dead(i)
      refused("estate", i:read(m2))
    end
  end)

  it("refuses a flipped tag byte in M3 with eauth and is dead afterwards", function()
    for _, pos in ipairs { 6 + 1, 6 + 33, 6 + 48, 6 + 49, 6 + 64 } do
      local r = responder_at_m3()
      local v, msg, _, code = r:read(flip(m3, pos, 0x40))
      assert.is_nil(v)
      assert.equal("eauth", code, pos .. ": " .. tostring(msg))
      assert_dead(r)
      refused("estate", r:read(m3))
      refused("estate", r:remote_static())
    end
  end)

  it("refuses low-order points as the remote ephemeral", function()
    local points = {
      "0000000000000000000000000000000000000000000000000000000000000000",
      "0100000000000000000000000000000000000000000000000000000000000000",
      "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    }
    for _, p in ipairs(points) do
      local r = new("responder")
      local v, msg, _, code = r:read("\x83\x6d\0\0\0\x20" .. unhex(p))
      assert.is_nil(v, p)
      assert.equal("eauth", code, p .. ": " .. tostring(msg))
      assert_dead(r)
      local i = initiator_at_m2()
      v, msg, _, code = i:read(m2:sub(1, 6) .. unhex(p) .. m2:sub(39))
      assert.is_nil(v, p)
      assert.equal("eauth", code, p .. ": " .. tostring(msg))
      assert_dead(i)
    end
  end)

  it("refuses a peer the verify function rejects (initiator in M2, responder in M3)", function()
    local verdicts = {
      ["false"] = function() return false end,
      ["nil"] = function() end,
      ["a string"] = function() return "yes" end,
      ["raise"] = function() error("peer not paired") end,
      ["yield"] = function() coroutine.yield() end,
    }
    for name, fn in pairs(verdicts) do
      local calls = 0
      local counted = function(k) calls = calls + 1; return fn(k) end
      local i = initiator_at_m2 { verify = counted }
      local v, msg, _, code = i:read(m2)
      assert.is_nil(v, name)
      assert.equal("etrust", code, name .. ": " .. tostring(msg))
      if name == "raise" then assert.matches("peer not paired", msg) end
      assert.equal(1, calls)
      assert_dead(i)

      local r = responder_at_m3 { verify = counted }
      v, msg, _, code = r:read(m3)
      assert.is_nil(v, name)
      assert.equal("etrust", code, name .. ": " .. tostring(msg))
      assert.equal(2, calls)
      assert_dead(r)
      refused("estate", r:open(body_of(FRAMES[1].wire_hex)))
    end
  end)

  it("passes the peer's static key to verify and accepts only that decision", function()
    local want = { initiator = K.responder_static_pub, responder = K.initiator_static_pub }
    local trusted = { [K.responder_static_pub] = true }
    local function verify(k) return trusted[hex(k)] == true end
    local i = initiator_at_m2 { verify = verify }
    assert.is_true(i:read(m2))
    assert.equal(want.initiator, hex(i:remote_static()))
    local r = responder_at_m3 { verify = verify } -- initiator's key is not trusted
    refused("etrust", r:read(m3))
  end)

  it("treats a verify function that re-enters the handshake as a rejection", function()
    local i
    i = initiator_at_m2 { verify = function() return i:write() ~= nil end }
    refused("etrust", i:read(m2))
    assert_dead(i)
  end)

  it("refuses calls in the wrong state without killing the handshake", function()
    local i, r = new("initiator"), new("responder")
    refused("estate", i:read(m2))
    refused("estate", r:write())
    refused("estate", i:seal("early"))
    refused("estate", i:open(body_of(FRAMES[2].wire_hex)))
    refused("estate", i:remote_static())
    assert(r:read(assert(i:write())))
    refused("estate", i:write())
    refused("estate", r:read(m3))
    assert(i:read(assert(r:write())))
    assert(r:read(assert(i:write())))
    assert.is_true(i:is_done() and r:is_done())
    refused("estate", i:write())
    refused("estate", r:read(m3))
    assert.equal(FRAMES[1].plaintext_etf_hex, hex(r:open(i:seal(unhex(FRAMES[1].plaintext_etf_hex)))))
  end)

  it("requires a verify function and well-formed keys", function()
    local k = string.rep("\1", 32)
    assert.has_error(function() handshake.new { role = "initiator", static = k } end)
    assert.has_error(function() handshake.new { role = "initiator", static = k:sub(2), verify = print } end)
    assert.has_error(function() handshake.new { role = "x", static = k, verify = print } end)
    assert.has_error(function() handshake.new { role = "initiator", static = k, verify = print, ephemeral = 7 } end)
  end)
end)

describe("peernet.handshake transport", function()
  local function pair()
    local i, r = new("initiator"), new("responder")
    assert(r:read(assert(i:write())))
    assert(i:read(assert(r:write())))
    assert(r:read(assert(i:write())))
    return i, r
  end

  it("refuses a bad transport tag with eauth and closes the session", function()
    local i, r = pair()
    local body = body_of(FRAMES[1].wire_hex)
    local v, msg, _, code = r:open(flip(body, #body))
    assert.is_nil(v)
    assert.equal("eauth", code, msg)
    assert.equal("failed", r:next())
    refused("estate", r:open(body))
    refused("estate", r:seal("x"))
    assert(i:seal("i is unaffected"))
  end)

  it("refuses replayed, reordered, truncated and oversized bodies", function()
    local _, r = pair()
    local f1 = body_of(FRAMES[1].wire_hex)
    assert(r:open(f1))
    refused("eauth", r:open(f1)) -- replay of counter 0
    _, r = pair()
    refused("eauth", r:open(body_of(FRAMES[3].wire_hex))) -- counter 1 first
    _, r = pair()
    refused("einval", r:open(string.rep("\0", 15)))
    _, r = pair()
    refused("etoobig", r:open(string.rep("\0", handshake.TRANSPORT_BODY_MAX + 1)))
    assert.equal("failed", r:next())
  end)

  it("round-trips a message filling the 1 MiB frame cap, and refuses one byte more", function()
    local i, r = pair()
    local big = string.rep("PeerNet!", handshake.TRANSPORT_BODY_MAX // 8):sub(1, handshake.TRANSPORT_BODY_MAX - 16)
    local body = assert(i:seal(big))
    assert.equal(handshake.TRANSPORT_BODY_MAX, #body)
    assert.equal(big, r:open(body))
    local v, msg, _, code = i:seal(big .. "x")
    assert.is_nil(v)
    assert.equal("etoobig", code, msg)
    assert.equal("done", i:next()) -- a refused argument is not fatal
    assert.equal("after", r:open(assert(i:seal("after"))))
    assert.equal(big, i:open(assert(r:seal(big))))
  end)
end)
