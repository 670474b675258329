-- peernet.noise: Noise_XX_25519_ChaChaPoly_SHA256 (spec rev 34) and its
-- PeerNet profile, checked against the golden vectors from both sides.
local peernet = require "peernet"
local noise = peernet.noise
local unhex, hex = H.unhex, H.hex

local NAME = "Noise_XX_25519_ChaChaPoly_SHA256"

-- Low-order X25519 u-coordinates (order 1, 2, 4, 8, and non-canonical
-- encodings of the same points); every one must be refused.
local LOW_ORDER = {
  zero = "0000000000000000000000000000000000000000000000000000000000000000",
  one = "0100000000000000000000000000000000000000000000000000000000000000",
  order8_a = "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  order8_b = "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  p_minus_1 = "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  p = "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  p_plus_1 = "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  zero_high_bit = "0000000000000000000000000000000000000000000000000000000000000080",
}

-- Standard-profile vectors: the file's `vectors` plus the usable entries of
-- `additional_vectors` (noise-c names the protocol `name`; snow's have empty
-- psk lists and no handshake_hash).
local function usable(v)
  if (v.protocol_name or v.name) ~= NAME then return false end
  if (v.init_psks and #v.init_psks > 0) or (v.resp_psks and #v.resp_psks > 0) then return false end
  return v.init_static and v.resp_static and v.init_ephemeral and v.resp_ephemeral
    and v.messages and #v.messages >= 3
end

local function standard_cases()
  local file = H.vector_file("noise_xx_25519_chachapoly_sha256.json")
  local cases = {}
  for i, v in ipairs(file.vectors or {}) do
    if usable(v) then cases[#cases + 1] = { label = "vectors[" .. (i - 1) .. "]", v = v } end
  end
  for i, v in ipairs(file.additional_vectors or {}) do
    if usable(v) then
      cases[#cases + 1] = { label = "additional_vectors[" .. (i - 1) .. "] (" .. (v.source or "?"):match("^%S+") .. ")", v = v }
    end
  end
  return cases
end

-- Drives one side of a vector alone against the recorded bytes of the other.
-- Messages alternate initiator, responder, initiator, ... (handshake [0..2],
-- then transport [3] resp->init, [4] init->resp, ...). Returns the final h
-- and how many messages were compared.
local function drive_standard(v, role)
  local me = role == "initiator" and "init" or "resp"
  local st = assert(noise.new {
    role = role,
    static = unhex(v[me .. "_static"]),
    ephemeral = unhex(v[me .. "_ephemeral"]),
    prologue = unhex(v[me .. "_prologue"] or ""),
  })
  local tx, rx, h
  local compared = 0
  for i, m in ipairs(v.messages) do
    local idx = i - 1
    local sender = idx % 2 == 0 and "initiator" or "responder"
    local pt, ct = unhex(m.payload), unhex(m.ciphertext)
    if idx < 3 then
      if sender == role then
        assert.equal(m.ciphertext, hex(assert(st:write_message(pt))), "message " .. idx)
      else
        assert.equal(m.payload, hex(assert(st:read_message(ct))), "message " .. idx)
      end
      if idx == 2 then
        assert.is_true(st:is_done())
        h = st:handshake_hash()
        if v.handshake_hash then assert.equal(v.handshake_hash, hex(h)) end
        tx, rx = st:split()
        assert.truthy(tx and rx)
      end
    elseif sender == role then
      assert.equal(m.ciphertext, hex(assert(tx:encrypt(pt))), "transport message " .. idx)
    else
      assert.equal(m.payload, hex(assert(rx:decrypt(ct))), "transport message " .. idx)
    end
    compared = compared + 1
  end
  assert.equal(#v.messages, compared)
  return h, compared
end

describe("peernet.noise standard profile", function()
  local cases = standard_cases()

  it("finds usable XX/25519/ChaChaPoly/SHA256 vectors in the file", function()
    -- vectors[0] (cacophony), snow's and noise-c's additional vectors
    assert.is_true(#cases > 0)
    assert.equal(3, #cases)
  end)

  for _, c in ipairs(cases) do
    it("reproduces " .. c.label .. " from both sides (handshake, hash, transport)", function()
      local h_i, n_i = drive_standard(c.v, "initiator")
      local h_r, n_r = drive_standard(c.v, "responder")
      assert.equal(hex(h_i), hex(h_r))
      assert.is_true(n_i >= 3 and n_r >= 3)
    end)
  end

  it("checked every usable vector from both sides", function()
    local checked = 0
    for _, c in ipairs(cases) do
      drive_standard(c.v, "initiator")
      drive_standard(c.v, "responder")
      checked = checked + 2
    end
    assert.is_true(checked > 0)
    assert.equal(2 * #cases, checked)
  end)

  it("starts from h = ck = the protocol name, then mixes the prologue", function()
    local k = string.rep("\7", 32)
    local with_empty = noise.new { role = "initiator", static = k }
    assert.equal(hex(noise.hash(NAME)), hex(with_empty:handshake_hash()))
    assert.equal(NAME, with_empty:chaining_key())
    local with_prologue = noise.new { role = "initiator", static = k, prologue = "abc" }
    assert.equal(hex(noise.hash(NAME .. "abc")), hex(with_prologue:handshake_hash()))
    assert.equal(32, #noise.PROTOCOL_NAME)
  end)

  it("completes a handshake between two fresh states with random ephemerals", function()
    local seen = {}
    local ik, rk = string.rep("\17", 32), string.rep("\34", 32)
    local i = noise.new { role = "initiator", static = ik, verify = function(k) seen.i = k; return true end }
    local r = noise.new { role = "responder", static = rk, verify = function(k) seen.r = k; return true end }
    assert.equal("p1", r:read_message(assert(i:write_message("p1"))))
    assert.equal("p2", i:read_message(assert(r:write_message("p2"))))
    assert.equal("p3", r:read_message(assert(i:write_message("p3"))))
    assert.equal(hex(i:handshake_hash()), hex(r:handshake_hash()))
    assert.equal(hex(i:chaining_key()), hex(r:chaining_key()))
    assert.equal(seen.i, i:remote_static())
    assert.equal(seen.r, r:remote_static())
    local itx, irx = i:split()
    local rtx, rrx = r:split()
    assert.equal("hello", rrx:decrypt(itx:encrypt("hello")))
    assert.equal("back", irx:decrypt(rtx:encrypt("back", "ad"), "ad"))
    -- different ephemerals every run
    local i2 = noise.new { role = "initiator", static = ik }
    assert.not_equal(hex(i2:write_message()), hex(noise.new { role = "initiator", static = ik }:write_message()))
  end)
end)

describe("peernet.noise PeerNet profile", function()
  local W = H.vector_file("peernet_wire_v1.json")
  local K, HS = W.keys, W.handshake
  local function raw(name) return unhex(HS[name].raw_hex) end
  local function new(role, profile)
    local who = role
    return assert(noise.new {
      role = role,
      profile = profile,
      static = unhex(K[who .. "_static_priv"]),
      ephemeral = unhex(K[who .. "_ephemeral_priv"]),
    })
  end

  it("reproduces the wire transcript from the initiator's side", function()
    local st = new("initiator", "peernet")
    assert.equal(HS.initial_h_and_ck, hex(st:handshake_hash()))
    assert.equal(HS.initial_h_and_ck, hex(st:chaining_key()))
    assert.equal(HS.m1.raw_hex, hex(assert(st:write_message())))
    assert.equal(HS.m1.h_after_hex, hex(st:handshake_hash()))
    assert.equal(HS.m1.ck_after_hex, hex(st:chaining_key()))
    assert.equal("", assert(st:read_message(raw("m2"))))
    assert.equal(HS.m2.h_after_hex, hex(st:handshake_hash()))
    assert.equal(HS.m2.ck_after_hex, hex(st:chaining_key()))
    assert.equal(K.responder_static_pub, hex(st:remote_static()))
    assert.equal(HS.m3.raw_hex, hex(assert(st:write_message())))
    assert.is_true(st:is_done())
    assert.equal(HS.final_h_hex, hex(st:handshake_hash()))
    assert.equal(HS.final_ck_hex, hex(st:chaining_key()))
    local tx, rx = st:split()
    local probe = "split key probe"
    assert.equal(hex(noise.cipher(unhex(HS.initiator_tx_key_hex)):encrypt(probe)), hex(tx:encrypt(probe)))
    assert.equal(probe, rx:decrypt(noise.cipher(unhex(HS.initiator_rx_key_hex)):encrypt(probe)))
  end)

  it("reproduces the wire transcript from the responder's side", function()
    local st = new("responder", "peernet")
    assert.equal("", assert(st:read_message(raw("m1"))))
    assert.equal(HS.m1.h_after_hex, hex(st:handshake_hash()))
    assert.equal(HS.m1.ck_after_hex, hex(st:chaining_key()))
    assert.equal(HS.m2.raw_hex, hex(assert(st:write_message())))
    assert.equal(HS.m2.h_after_hex, hex(st:handshake_hash()))
    assert.equal(HS.m2.ck_after_hex, hex(st:chaining_key()))
    assert.equal("", assert(st:read_message(raw("m3"))))
    assert.equal(K.initiator_static_pub, hex(st:remote_static()))
    assert.equal(HS.final_h_hex, hex(st:handshake_hash()))
    assert.equal(HS.final_ck_hex, hex(st:chaining_key()))
    local tx, rx = st:split()
    local probe = "split key probe"
    -- responder sends with k2 (= initiator_rx) and receives with k1
    assert.equal(hex(noise.cipher(unhex(HS.initiator_rx_key_hex)):encrypt(probe)), hex(tx:encrypt(probe)))
    assert.equal(probe, rx:decrypt(noise.cipher(unhex(HS.initiator_tx_key_hex)):encrypt(probe)))
  end)

  it("refuses a prologue and non-empty payloads", function()
    local ok, err = noise.new { role = "initiator", profile = "peernet", static = unhex(K.initiator_static_priv), prologue = "x" }
    assert.is_nil(ok)
    assert.matches("prologue", err)
    local st = new("initiator", "peernet")
    local msg, e, _, code = st:write_message("payload")
    assert.is_nil(msg)
    assert.equal("einval", code, e)
    assert.equal(HS.m1.raw_hex, hex(assert(st:write_message()))) -- still usable
    local r = new("responder", "peernet")
    msg, e, _, code = r:read_message(raw("m1") .. "x")
    assert.is_nil(msg)
    assert.equal("einval", code, e)
  end)
end)

describe("peernet.noise spec conformance (standard profile, empty prologue)", function()
  local W = H.vector_file("peernet_wire_v1.json")
  local K, HS, C = W.keys, W.handshake, W.noise_spec_conformance
  local function new(role, profile)
    return assert(noise.new {
      role = role,
      profile = profile,
      static = unhex(K[role .. "_static_priv"]),
      ephemeral = unhex(K[role .. "_ephemeral_priv"]),
    })
  end

  it("reproduces every spec-compliant value from the initiator's side", function()
    local st = new("initiator", "standard")
    assert.equal(C.spec_h_after_prologue, hex(st:handshake_hash()))
    -- the intermediate h after the e token, via the documented formulas
    local e_pub = unhex(K.initiator_ephemeral_pub)
    assert.equal(C.spec_h_after_e_token, hex(noise.hash(unhex(C.spec_h_after_prologue) .. e_pub)))
    assert.equal(C.spec_h_after_m1_payload, hex(noise.hash(unhex(C.spec_h_after_e_token))))
    assert.equal(C.reference_h_after_m1, hex(noise.hash(NAME .. e_pub)))
    assert.is_true(C.h0_is_protocol_name_unhashed_because_len_eq_32)

    assert.equal(C.spec_compliant_m1_raw_hex, hex(assert(st:write_message())))
    assert.equal(C.spec_h_after_m1_payload, hex(st:handshake_hash()))
    assert.equal("", assert(st:read_message(unhex(C.spec_compliant_m2_raw_hex))))
    assert.equal(C.spec_compliant_m3_raw_hex, hex(assert(st:write_message())))
    assert.equal(C.spec_compliant_final_h_hex, hex(st:handshake_hash()))
    assert.equal(HS.final_ck_hex, hex(st:chaining_key()))
    local tx, rx = st:split()
    local probe = "conformance probe"
    assert.equal(hex(noise.cipher(unhex(C.spec_compliant_initiator_tx_key_hex)):encrypt(probe)), hex(tx:encrypt(probe)))
    assert.equal(probe, rx:decrypt(noise.cipher(unhex(C.spec_compliant_initiator_rx_key_hex)):encrypt(probe)))
  end)

  it("reproduces every spec-compliant value from the responder's side", function()
    local st = new("responder", "standard")
    assert.equal("", assert(st:read_message(unhex(C.spec_compliant_m1_raw_hex))))
    assert.equal(C.spec_h_after_m1_payload, hex(st:handshake_hash()))
    assert.equal(C.spec_compliant_m2_raw_hex, hex(assert(st:write_message())))
    assert.equal("", assert(st:read_message(unhex(C.spec_compliant_m3_raw_hex))))
    assert.equal(C.spec_compliant_final_h_hex, hex(st:handshake_hash()))
    assert.equal(HS.final_ck_hex, hex(st:chaining_key()))
    local tx = st:split()
    local probe = "conformance probe"
    assert.equal(hex(noise.cipher(unhex(C.spec_compliant_initiator_rx_key_hex)):encrypt(probe)), hex(tx:encrypt(probe)))
  end)

  it("differs from the PeerNet profile exactly in h (so in the tags), never in ck or ciphertext", function()
    local std, pn = new("initiator", "standard"), new("initiator", "peernet")
    -- deviation (1): no MixHash(prologue)
    assert.equal(NAME, pn:handshake_hash())
    assert.equal(hex(noise.hash(NAME)), hex(std:handshake_hash()))
    -- M1 bytes equal; deviation (2): the empty payload is not hashed
    assert.equal(hex(std:write_message()), hex(pn:write_message()))
    assert.equal(C.reference_h_after_m1, hex(pn:handshake_hash()))
    assert.equal(hex(std:chaining_key()), hex(pn:chaining_key()))

    local std_m2, pn_m2 = unhex(C.spec_compliant_m2_raw_hex), unhex(HS.m2.raw_hex)
    assert.equal(hex(std_m2:sub(1, 64)), hex(pn_m2:sub(1, 64))) -- e, enc(s) without tag
    assert.not_equal(hex(std_m2:sub(65, 80)), hex(pn_m2:sub(65, 80))) -- tag of s
    assert.not_equal(hex(std_m2:sub(81, 96)), hex(pn_m2:sub(81, 96))) -- tag of payload
    -- each profile refuses the other's M2 at the first tag
    local other = new("initiator", "standard")
    assert(other:write_message())
    local msg, _, _, code = other:read_message(pn_m2)
    assert.is_nil(msg)
    assert.equal("eauth", code)
    other = new("initiator", "peernet")
    assert(other:write_message())
    msg, _, _, code = other:read_message(std_m2)
    assert.is_nil(msg)
    assert.equal("eauth", code)
    assert(std:read_message(std_m2))
    assert(pn:read_message(pn_m2))
    assert.equal(hex(std:chaining_key()), hex(pn:chaining_key()))

    local std_m3, pn_m3 = assert(std:write_message()), assert(pn:write_message())
    assert.equal(C.spec_compliant_m3_raw_hex, hex(std_m3))
    assert.equal(HS.m3.raw_hex, hex(pn_m3))
    assert.equal(hex(std_m3:sub(1, 32)), hex(pn_m3:sub(1, 32)))
    assert.not_equal(hex(std_m3:sub(33, 48)), hex(pn_m3:sub(33, 48)))
    assert.not_equal(hex(std_m3:sub(49, 64)), hex(pn_m3:sub(49, 64)))
    assert.equal(hex(std:chaining_key()), hex(pn:chaining_key()))
    assert.equal(HS.final_ck_hex, hex(pn:chaining_key()))
    assert.equal(C.spec_compliant_initiator_tx_key_hex, HS.initiator_tx_key_hex)
    assert.equal(C.spec_compliant_initiator_rx_key_hex, HS.initiator_rx_key_hex)
  end)
end)

describe("peernet.noise refusals", function()
  local W = H.vector_file("peernet_wire_v1.json")
  local K, HS = W.keys, W.handshake
  local function new(role, extra)
    local o = {
      role = role,
      static = unhex(K[role .. "_static_priv"]),
      ephemeral = unhex(K[role .. "_ephemeral_priv"]),
      profile = "peernet",
    }
    for k, v in pairs(extra or {}) do o[k] = v end
    return assert(noise.new(o))
  end
  local function refused(code, ...)
    local v, msg, _, c = ...
    assert.is_nil(v)
    assert.is_string(msg)
    assert.equal(code, c, msg)
  end

  it("refuses calls in the wrong state without harming the handshake", function()
    local i, r = new("initiator"), new("responder")
    refused("estate", i:read_message(unhex(HS.m2.raw_hex)))
    refused("estate", r:write_message())
    refused("estate", i:split())
    refused("estate", i:remote_static())
    assert(r:read_message(assert(i:write_message())))
    refused("estate", i:write_message())
    refused("estate", r:read_message(unhex(HS.m3.raw_hex)))
    assert(i:read_message(assert(r:write_message())))
    assert(r:read_message(assert(i:write_message())))
    assert.is_true(i:is_done() and r:is_done())
    refused("estate", i:write_message())
    refused("estate", r:read_message(unhex(HS.m3.raw_hex)))
    assert(i:split())
    refused("estate", i:split())
  end)

  it("refuses messages of the wrong size and is dead afterwards", function()
    local m1 = unhex(HS.m1.raw_hex)
    for _, bad in ipairs { "", m1:sub(1, 31), m1 .. "\0" } do
      local r = new("responder")
      refused("einval", r:read_message(bad))
      refused("estate", r:read_message(m1))
      refused("estate", r:write_message())
      refused("estate", r:chaining_key())
    end
    local m2 = unhex(HS.m2.raw_hex)
    for _, bad in ipairs { m2:sub(1, 95), m2 .. "\0", m2:sub(1, 32) } do
      local i = new("initiator")
      assert(i:write_message())
      refused("einval", i:read_message(bad))
      refused("estate", i:read_message(m2))
    end
    -- standard profile: a message too short for its tokens, and one too big
    local st = noise.new { role = "responder", static = string.rep("\1", 32) }
    refused("einval", st:read_message(string.rep("\9", 31)))
    st = noise.new { role = "responder", static = string.rep("\1", 32) }
    refused("etoobig", st:read_message(string.rep("\9", noise.MSG_MAX + 1)))
  end)

  it("refuses a flipped tag byte in M2 and M3 with eauth, and is dead afterwards", function()
    local m2 = unhex(HS.m2.raw_hex)
    for _, pos in ipairs { 33, 64, 65, 80, 81, 96 } do -- s ciphertext, s tag, payload tag
      local i = new("initiator")
      assert(i:write_message())
      local bad = m2:sub(1, pos - 1) .. string.char(m2:byte(pos) ~ 0x01) .. m2:sub(pos + 1)
      refused("eauth", i:read_message(bad))
      refused("estate", i:read_message(m2))
      refused("estate", i:write_message())
      assert.is_false(i:is_done())
    end
    local m3 = unhex(HS.m3.raw_hex)
    for _, pos in ipairs { 1, 48, 49, 64 } do
      local r = new("responder")
      assert(r:read_message(unhex(HS.m1.raw_hex)))
      assert(r:write_message())
      local bad = m3:sub(1, pos - 1) .. string.char(m3:byte(pos) ~ 0x80) .. m3:sub(pos + 1)
      refused("eauth", r:read_message(bad))
      refused("estate", r:read_message(m3))
      refused("estate", r:split())
    end
  end)

  it("refuses low-order points as the remote ephemeral", function()
    for name, pt in pairs(LOW_ORDER) do
      local r = new("responder")
      local v, msg, _, code = r:read_message(unhex(pt))
      assert.is_nil(v, name)
      assert.equal("eauth", code, name .. ": " .. tostring(msg))
      refused("estate", r:write_message())
      -- as the e of M2 (ee would be all zero)
      local i = new("initiator")
      assert(i:write_message())
      v, msg, _, code = i:read_message(unhex(pt) .. unhex(HS.m2.raw_hex):sub(33))
      assert.is_nil(v, name)
      assert.equal("eauth", code, name .. ": " .. tostring(msg))
      -- and in the standard profile too
      local s = noise.new { role = "responder", static = string.rep("\1", 32) }
      refused("eauth", s:read_message(unhex(pt)))
    end
  end)

  it("asks the verify function at the moment s is decrypted and obeys it", function()
    local calls = {}
    local i = new("initiator", { verify = function(k) calls[#calls + 1] = "i:" .. hex(k); return true end })
    local r = new("responder", { verify = function(k) calls[#calls + 1] = "r:" .. hex(k); return true end })
    assert(r:read_message(assert(i:write_message())))
    assert.same({}, calls)
    assert(i:read_message(assert(r:write_message())))
    assert.same({ "i:" .. K.responder_static_pub }, calls)
    assert(r:read_message(assert(i:write_message())))
    assert.same({ "i:" .. K.responder_static_pub, "r:" .. K.initiator_static_pub }, calls)
  end)

  it("refuses a key the verify function rejects, raises on, or does not answer true for", function()
    local verdicts = {
      ["false"] = function() return false end,
      ["nil"] = function() end,
      ["truthy non-boolean"] = function() return 1 end,
      ["raise"] = function() error("no such peer") end,
      ["raise table"] = function() error({}) end,
    }
    for name, fn in pairs(verdicts) do
      local i = new("initiator", { verify = fn })
      assert(i:write_message())
      local v, msg, _, code = i:read_message(unhex(HS.m2.raw_hex))
      assert.is_nil(v, name)
      assert.equal("etrust", code, name .. ": " .. tostring(msg))
      if name == "raise" then assert.matches("no such peer", msg) end
      refused("estate", i:write_message())
      refused("estate", i:split())
      -- responder side, in M3
      local r = new("responder", { verify = fn })
      assert(r:read_message(unhex(HS.m1.raw_hex)))
      assert(r:write_message())
      v, _, _, code = r:read_message(unhex(HS.m3.raw_hex))
      assert.is_nil(v, name)
      assert.equal("etrust", code, name)
      refused("estate", r:split())
    end
  end)

  it("treats re-entering the state from its verify function as a rejection", function()
    local st
    st = new("initiator", { verify = function() return st:write_message() ~= nil end })
    assert(st:write_message())
    refused("etrust", st:read_message(unhex(HS.m2.raw_hex)))
  end)
end)

describe("peernet.noise cipher state", function()
  local key = string.rep("\42", 32)

  it("uses nonce = 4 zero bytes || u64 LE counter and counts per message", function()
    local a, b = noise.cipher(key), noise.cipher(key)
    assert.equal(0, a:nonce())
    local c1 = a:encrypt("x")
    assert.equal(1, a:nonce())
    assert.not_equal(c1, a:encrypt("x"))
    assert.equal("x", b:decrypt(c1))
    local c = noise.cipher(key, 5)
    assert.equal(5, c:nonce())
    local d = noise.cipher(key)
    d:set_nonce(5)
    assert.equal(hex(c:encrypt("m", "ad")), hex(d:encrypt("m", "ad")))
  end)

  it("fails at counter 2^64-1 and allows 2^64-2 exactly once", function()
    local c = noise.cipher(key)
    c:set_nonce(-1) -- 2^64-1 as a bit pattern
    local ct, msg, _, code = c:encrypt("late")
    assert.is_nil(ct)
    assert.equal("elimit", code, msg)
    c:set_nonce(-2)
    local last = assert(c:encrypt("last"))
    assert.equal(-1, c:nonce())
    ct, msg, _, code = c:encrypt("one more")
    assert.is_nil(ct)
    assert.equal("elimit", code, msg)
    assert.equal(-1, c:nonce()) -- never wraps

    local d = noise.cipher(key, -2)
    assert.equal("last", d:decrypt(last))
    local pt
    pt, msg, _, code = d:decrypt(last)
    assert.is_nil(pt)
    assert.equal("elimit", code, msg)
  end)

  it("refuses a bad tag, wrong AD and short input without advancing", function()
    local a, b = noise.cipher(key), noise.cipher(key)
    local ct = a:encrypt("payload", "ad")
    local bad = ct:sub(1, -2) .. string.char(ct:byte(-1) ~ 1)
    local pt, msg, _, code = b:decrypt(bad, "ad")
    assert.is_nil(pt)
    assert.equal("eauth", code, msg)
    assert.equal(0, b:nonce())
    pt, msg, _, code = b:decrypt(ct, "other ad")
    assert.equal("eauth", code, msg)
    pt, msg, _, code = b:decrypt(string.rep("\0", 15))
    assert.equal("einval", code, msg)
    assert.equal("payload", b:decrypt(ct, "ad"))
    assert.is_nil(pt)
  end)

  it("round-trips a 1 MiB message (no 65535-byte transport limit)", function()
    local big = string.rep("0123456789abcdef", 65536) -- 1048576 bytes
    local a, b = noise.cipher(key), noise.cipher(key)
    local ct = assert(a:encrypt(big))
    assert.equal(#big + 16, #ct)
    assert.equal(big, b:decrypt(ct))
    local ct2, msg, _, code = a:encrypt(big .. "x")
    assert.is_nil(ct2)
    assert.equal("etoobig", code, msg)
  end)

  it("raises on programming errors", function()
    assert.has_error(function() noise.cipher("short") end)
    assert.has_error(function() noise.new { role = "initiator" } end)
    assert.has_error(function() noise.new { role = "both", static = key } end)
    assert.has_error(function() noise.new { role = "initiator", static = key, profile = "nope" } end)
    assert.has_error(function() noise.new { role = "initiator", static = key, verify = 1 } end)
    assert.has_error(function() noise.new { role = "initiator", static = key, ephemeral = "x" } end)
  end)
end)
