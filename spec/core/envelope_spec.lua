-- Envelopes (PROTOCOL.md "Envelopes"): the recorded OTP 25 transcript, the
-- env_* ETF vectors, canonical OTP 26 encoding, and strict rejection of
-- everything that is not exactly one envelope.
local pn = require "peernet"
local env = pn.envelope

local wire = H.vector_file("peernet_wire_v1.json")
local etf_vectors = H.vector_file("etf_vectors.json")

local function vector(name)
  for _, v in ipairs(etf_vectors.valid) do
    if v.name == name then return v end
  end
  error("no ETF vector named " .. name)
end

local ZERO16 = ("\0"):rep(16)
local V = "\131"
-- Small ETF builders for hand-made inputs (no version byte).
local function atom(s) return "w" .. string.char(#s) .. s end
local function latin1_atom(s) return "d" .. string.pack(">s2", s) end
local function bin(s) return "m" .. string.pack(">s4", s) end
local function tup(...)
  local t = { ... }
  return "h" .. string.char(#t) .. table.concat(t)
end
local function small(i) return "a" .. string.char(i) end
local TEXT_HI = H.unhex("7400000001640004746578746d000000026869") -- %{text: "hi"}, OTP 25

-- Encodes a decoded envelope again, canonically or in the legacy form.
local function reencode(d, legacy)
  local id = d.id or d.id_str
  if d.kind == "call" then return env.call(id, d.name, d.term, legacy) end
  if d.kind == "reply" then return env.reply(id, d.ok, d.term, legacy) end
  if d.kind == "send" then return env.send(d.name, d.term, legacy) end
  return env[d.kind](d.nonce, legacy)
end

local function rejects(bytes, pattern)
  local d, msg, _, code = env.decode(bytes)
  assert.is_nil(d)
  assert.are.equal("einval", code)
  assert.is_string(msg)
  if pattern then
    assert.truthy(msg:find(pattern), "message '" .. msg .. "' does not match '" .. pattern .. "'")
  end
end

describe("envelope decoding of the recorded transcript (OTP 25)", function()
  local expected = {
    { kind = "call", id = 1, id_str = "1", name = "echo", term = TEXT_HI },
    { kind = "reply", id = 1, id_str = "1", ok = true, term = TEXT_HI },
    { kind = "send", name = "chat", term = H.unhex("7400000001640004746578746d00000002796f") },
    { kind = "ping", nonce = ZERO16 },
    { kind = "pong", nonce = ZERO16 },
  }

  it("has the five frames this spec expects", function()
    assert.are.equal(#expected, #wire.transport_frames)
  end)

  for i, fr in ipairs(wire.transport_frames) do
    local pt = H.unhex(fr.plaintext_etf_hex)

    it("decodes frame " .. i .. " " .. fr.term, function()
      assert.are.same(expected[i], assert(env.decode(pt)))
    end)

    it("re-encodes frame " .. i .. " byte for byte with the legacy flag", function()
      local d = assert(env.decode(pt))
      assert.are.equal(fr.plaintext_etf_hex, H.hex(assert(reencode(d, true))))
    end)

    it("encodes frame " .. i .. " canonically to bytes that decode to the same envelope",
      function()
        local d = assert(env.decode(pt))
        local canon = assert(reencode(d, false))
        assert.are_not.equal(pt, canon)
        assert.are.equal(0x77, canon:byte(4)) -- the kind atom is SMALL_ATOM_UTF8 now
        assert.are.same(d, assert(env.decode(canon)))
      end)
  end
end)

describe("envelope encoding against the env_* ETF vectors", function()
  local envelopes = { "env_call", "env_reply_ok_max_id", "env_reply_no_such_handle", "env_send",
    "env_ping", "env_pong", "env_ping_nonzero", "env_reply_forbidden" }

  for _, name in ipairs(envelopes) do
    local v = vector(name)
    it(name .. ": OTP 25 and OTP 26 forms decode alike and both re-encode exactly", function()
      local old = assert(env.decode(H.unhex(v.hex)))
      local new = assert(env.decode(H.unhex(v.hex_minor_version_2)))
      -- Only the atoms inside the Args differ between the two forms.
      assert.are.same(old.kind, new.kind)
      assert.are.same(old.id_str, new.id_str)
      assert.are.same(old.name, new.name)
      assert.are.same(old.ok, new.ok)
      assert.are.same(old.nonce, new.nonce)
      assert.are.equal(v.hex, H.hex(assert(reencode(old, true))))
      assert.are.equal(v.hex_minor_version_2, H.hex(assert(reencode(new, false))))
    end)
  end

  it("decodes env_call with its 47-bit id", function()
    local d = assert(env.decode(H.unhex(vector("env_call").hex)))
    assert.are.equal(123456789012345, d.id)
    assert.are.equal("123456789012345", d.id_str)
    assert.are.equal("echo", d.name)
  end)

  it("round-trips id 2^64-1 (env_reply_ok_max_id) as a decimal string", function()
    local v = vector("env_reply_ok_max_id")
    local d = assert(env.decode(H.unhex(v.hex_minor_version_2)))
    assert.are.equal("reply", d.kind)
    assert.are.equal("18446744073709551615", d.id_str)
    assert.is_nil(d.id) -- beyond a Lua integer
    assert.is_true(d.ok)
    local out = assert(env.reply("18446744073709551615", true, d.term))
    assert.are.equal(v.hex_minor_version_2, H.hex(out))
  end)

  it("round-trips the ids around 2^63", function()
    local args = pn.etf.encode(pn.tuple()):sub(2)
    for _, id in ipairs({ math.maxinteger, "9223372036854775807", "9223372036854775808",
      "18446744073709551614" }) do
      local d = assert(env.decode(assert(env.call(id, "h", args))))
      assert.are.equal(tostring(id), d.id_str)
      if math.type(id) == "integer" or id == "9223372036854775807" then
        assert.are.equal(math.maxinteger, d.id)
      else
        assert.is_nil(d.id)
      end
    end
  end)

  it("writes an id as the same canonical integer term as any integer", function()
    local args = pn.etf.encode(pn.tuple()):sub(2)
    local head = "\131h\4w\4call"
    for _, id in ipairs({ 1, 255, 256, (1 << 31) - 1, 1 << 31, 1 << 32, (1 << 40) + 7, math.maxinteger }) do
      local want = pn.etf.encode(id):sub(2)
      local out = assert(env.call(id, "h", args))
      assert.are.equal(head, out:sub(1, #head))
      assert.are.equal(H.hex(want), H.hex(out:sub(#head + 1, #head + #want)), tostring(id))
    end
  end)

  it("writes reply_error reasons like OTP 25 (legacy) and OTP 26", function()
    local v = vector("env_reply_no_such_handle")
    assert.are.equal(v.hex, H.hex(assert(env.reply_error(7, "no_such_handle", true))))
    assert.are.equal(v.hex_minor_version_2, H.hex(assert(env.reply_error(7, "no_such_handle"))))
    local d = assert(env.decode(assert(env.reply_error(7, "forbidden"))))
    assert.is_false(d.ok)
    assert.are.equal(atom("forbidden"), d.term)
  end)

  it("writes legacy names as OTP 25 did: Latin-1 as ATOM_EXT, the rest as UTF-8", function()
    local args = "j"
    local he = assert(env.send("h\u{e9}", args, true))
    assert.are.equal(V .. tup(latin1_atom("send"), latin1_atom("h\233"), args), he)
    assert.are.equal("h\u{e9}", assert(env.decode(he)).name)
    local jp = assert(env.send("\u{65e5}\u{672c}", args, true))
    assert.are.equal(V .. tup(latin1_atom("send"), atom("\u{65e5}\u{672c}"), args), jp)
    assert.are.equal("\u{65e5}\u{672c}", assert(env.decode(jp)).name)
  end)

  it("accepts the other valid spellings Erlang accepts (ATOM_UTF8, LARGE_TUPLE, long SMALL_BIG)",
    function()
      local d = assert(env.decode(V .. tup("v\0\4call", "n\8\0\5\0\0\0\0\0\0\0", "v\0\2hi", "j")))
      assert.are.same({ kind = "call", id = 5, id_str = "5", name = "hi", term = "j" }, d)
      d = assert(env.decode(V .. "i\0\0\0\2" .. atom("ping") .. bin(ZERO16)))
      assert.are.equal("ping", d.kind)
    end)

  it("hands Args, Value and Reason on as complete sub-terms", function()
    local args = pn.etf.encode({ 1, "two", { three = pn.tuple(3) } }):sub(2)
    local d = assert(env.decode(assert(env.call(9, "deep", args))))
    assert.are.equal(args, d.term)
    d = assert(env.decode(assert(env.reply(9, false, args))))
    assert.are.equal(args, d.term)
    assert.is_false(d.ok)
  end)
end)

describe("envelope decoding rejects", function()
  local call = function(id, name, args) return V .. tup(atom("call"), id, name or atom("echo"), args or "j") end

  it("id 0", function() rejects(call(small(0)), "call id must be an integer 1%.%.2%^64%-1, got 0") end)
  it("a negative id", function()
    rejects(call("b\255\255\255\255"), "call id must be an integer 1%.%.2%^64%-1, got a negative")
    rejects(call("n\1\1\5"), "got a negative integer")
    rejects(call("n\8\1\255\255\255\255\255\255\255\255"), "got a negative integer")
    rejects(V .. tup(atom("reply"), "b\128\0\0\0", tup(atom("ok"), "j")),
      "reply id must be an integer")
  end)
  it("a float id", function() rejects(call("F\63\240\0\0\0\0\0\0"), "got a float") end)
  it("an id that is not a number", function()
    rejects(call(atom("one")), "got an atom")
    rejects(call(bin("1")), "got a binary")
  end)

  it("wrong arities", function()
    rejects(V .. tup(atom("call"), small(1), atom("echo")), "call must be a 4%-tuple")
    rejects(V .. tup(atom("call"), small(1), atom("echo"), "j", "j"), "call must be a 4%-tuple")
    rejects(V .. tup(atom("reply"), small(1), tup(atom("ok"), "j"), "j"), "reply must be a 3%-tuple")
    rejects(V .. tup(atom("send"), atom("chat")), "send must be a 3%-tuple")
    rejects(V .. tup(atom("ping"), bin(ZERO16), bin(ZERO16)), "ping must be a 2%-tuple")
    rejects(V .. tup(atom("pong")), "pong must be a 2%-tuple")
    rejects(V .. tup(), "empty tuple")
  end)

  it("an unknown first atom, or a first element that is no atom", function()
    rejects(H.unhex(vector("env_rpc").hex), "first element must be the atom call, reply")
    rejects(V .. tup(atom("hello"), small(1)), "got another atom")
    rejects(V .. tup(atom("Call"), small(1), atom("x"), "j"), "got another atom")
    rejects(V .. tup(bin("call"), small(1), atom("x"), "j"), "got a binary")
  end)

  it("something other than a tuple", function()
    rejects(H.unhex(vector("atom_ok").hex), "expected a tuple, got an atom")
    rejects(V .. "l\0\0\0\1" .. atom("ping") .. "j", "expected a tuple, got a list")
  end)

  it("a name that is not an atom", function()
    rejects(call(small(1), bin("echo")), "call name must be an atom, got a binary")
    rejects(call(small(1), "k\0\4echo"), "call name must be an atom, got a list")
    rejects(V .. tup(atom("send"), bin("chat"), "j"), "send name must be an atom, got a binary")
  end)

  it("nonces that are not exactly 16 bytes of binary", function()
    rejects(V .. tup(atom("ping"), bin(("\0"):rep(15))), "got one of 15 bytes")
    rejects(V .. tup(atom("pong"), bin(("\0"):rep(17))), "got one of 17 bytes")
    rejects(V .. tup(atom("ping"), bin("")), "got one of 0 bytes")
    rejects(V .. tup(atom("ping"), "k\0\16" .. ZERO16), "ping nonce must be a 16%-byte binary, got a list")
  end)

  it("a reply result other than {ok, X} or {error, X}", function()
    local reply = function(r) return V .. tup(atom("reply"), small(1), r) end
    rejects(reply(tup(atom("maybe"), small(1))), "first element is not the atom ok or error")
    rejects(reply(tup(bin("ok"), small(1))), "first element is not the atom ok or error")
    rejects(reply(tup(atom("ok"), small(1), small(2))), "got a 3%-tuple")
    rejects(reply(tup(atom("ok"))), "got a 1%-tuple")
    rejects(reply(atom("ok")), "got an atom")
    rejects(reply("l\0\0\0\2" .. atom("ok") .. small(1) .. "j"), "got a list")
  end)

  it("trailing bytes", function()
    rejects(H.unhex(wire.transport_frames[5].plaintext_etf_hex) .. "\0", "trailing")
    rejects(V .. tup(atom("ping"), bin(ZERO16)) .. V .. "j", "trailing")
  end)

  it("a missing or wrong version byte, and empty or truncated input", function()
    local pt = H.unhex(wire.transport_frames[1].plaintext_etf_hex)
    rejects(pt:sub(2), "version byte")
    rejects("\130" .. pt:sub(2), "version byte")
    rejects("", "empty")
    rejects("\131", "empty term")
    for cut = 2, #pt - 1 do rejects(pt:sub(1, cut)) end
    rejects(H.unhex("83680464000463616c6c6e060079df0d8648706400046563686f7400000001640004746578746d0000000268"),
      "truncated")
  end)

  it("Args that are not well-formed ETF at all", function()
    rejects(call(small(1), atom("x"), "\255"), "unknown tag")
    rejects(call(small(1), atom("x"), "P\0\0\0\1x"), "compressed term")
    rejects(call(small(1), atom("x"), "X" .. atom("n@h") .. "\0\0\0\1"), "truncated")
    rejects(call(small(1), atom("x"), "X" .. small(1) .. ("\0"):rep(12)), "node name at byte 1 is not an atom")
    rejects(call(small(1), atom("x"), "l\0\0\0\2" .. small(1) .. small(2)), "truncated")
    rejects(call(small(1), atom("x"), "p\0\0\0\5" .. ("\0"):rep(40)), "fun at byte 0 has a size of 5")
    rejects(call(small(1), atom("x"), "o\255\255\255\255\0\1"), "truncated")
    rejects(call(small(1), atom("x"), "h\255" .. small(1)), "count 255 at byte 0 is more than the remaining")
    -- an id is an envelope field: past 2^64-1 it is no envelope
    rejects(call("n\9\0" .. ("\0"):rep(8) .. "\64"), "call id must be an integer 1%.%.2%^64%-1")
  end)
end)

describe("envelope decoding of terms outside the ETF subset", function()
  -- pn_envelope_decode accepts them as a call's Args, a send's Args or a
  -- reply's Value or Reason, flagged foreign: the host fails that call only.
  local foreign_vectors = { "pid", "reference", "port", "local_fun", "external_fun", "bitstring_3_bits" }
  local function reject_vector(name)
    for _, v in ipairs(etf_vectors.must_reject) do
      if v.name == name then return H.unhex(v.hex):sub(2) end
    end
    error("no must_reject vector " .. name)
  end
  local others = {
    improper_list = "l\0\0\0\1" .. small(1) .. small(2),
    nested_64_deep = ("h\1"):rep(64) .. "j", -- 65 open containers with the envelope's
    old_float = "c" .. ("1.50000000000000000000e+00"):rep(1) .. ("\0"):rep(5),
    small_atom_latin1 = "s\2ok",
    bad_utf8_atom = "w\1\255",
    nan = "F\127\248\0\0\0\0\0\0",
    big_past_limit = "o\0\0\16\1\0" .. ("\1"):rep(4097),
    old_pid = "g" .. atom("n@h") .. ("\0"):rep(9),
    new_reference = "r\0\2" .. "d\0\3n@h" .. "\0" .. ("\0"):rep(8),
    v4_port = "x" .. atom("n@h") .. ("\0"):rep(12),
    old_fun = "u\0\0\0\1" .. "g" .. atom("n@h") .. ("\0"):rep(9) .. atom("m") .. small(1) .. small(2) .. small(3),
  }

  local function check(bytes, term)
    local d = assert(env.decode(bytes))
    assert.is_true(d.foreign)
    assert.are.equal(term, d.term)
    return d
  end

  it("are envelopes with a foreign term, for call, send and reply", function()
    local terms = {}
    for _, n in ipairs(foreign_vectors) do terms[n] = reject_vector(n) end
    for n, t in pairs(others) do terms[n] = t end
    for n, t in pairs(terms) do
      local c = check(V .. tup(atom("call"), small(7), atom("echo"), t), t)
      assert.are.same({ "call", 7, "echo" }, { c.kind, c.id, c.name }, n)
      check(V .. tup(atom("send"), atom("chat"), t), t)
      local r = check(V .. tup(atom("reply"), small(9), tup(atom("ok"), t)), t)
      assert.is_true(r.ok)
      r = check(V .. tup(atom("reply"), small(9), tup(atom("error"), t)), t)
      assert.is_false(r.ok)
      -- inside containers too, and nothing may follow the envelope
      local inside = "l\0\0\0\2" .. small(1) .. t .. "j"
      check(V .. tup(atom("call"), small(7), atom("echo"), inside), inside)
      local m = "t\0\0\0\1" .. t .. t
      check(V .. tup(atom("send"), atom("chat"), m), m)
      rejects(V .. tup(atom("send"), atom("chat"), t) .. "\0", "trailing")
      -- and no encoder puts such a term on the wire
      assert.is_nil((env.call(1, "echo", t)), n)
      assert.is_nil((env.send("echo", t)), n)
      assert.is_nil((env.reply(1, true, t)), n)
    end
  end)

  it("leaves terms of the subset unflagged, big integers included", function()
    local p70 = "n\9\0" .. ("\0"):rep(8) .. "\64"
    local d = assert(env.decode(V .. tup(atom("call"), small(7), atom("echo"), p70)))
    assert.is_nil(d.foreign)
    assert.are.equal(p70, d.term)
    -- 63 tuples inside the envelope's own make 64 open containers: allowed.
    assert.is_nil(assert(env.decode(V .. tup(atom("send"), atom("x"), ("h\1"):rep(63) .. "j"))).foreign)
  end)
end)

describe("envelope encoding refuses", function()
  it("id 0", function()
    local out, msg, _, code = env.call(0, "echo", "j")
    assert.is_nil(out)
    assert.are.equal("einval", code)
    assert.truthy(msg:find("call id must be an integer 1..2^64-1", 1, true))
    assert.is_nil((env.reply("0", true, "j")))
    assert.is_nil((env.reply_error(0, "forbidden")))
  end)

  it("Args, Value and Reason that are not exactly one valid term", function()
    for _, bad in ipairs({ "", "X", "jj", "a", "\131j", "l\0\0\0\1a\1a\2" }) do
      local out, msg, _, code = env.call(1, "echo", bad)
      assert.is_nil(out)
      assert.are.equal("einval", code)
      assert.truthy(msg:find("call Args is not one valid term", 1, true), msg)
      assert.is_nil((env.send("chat", bad)))
      assert.is_nil((env.reply(1, true, bad)))
    end
  end)

  it("Args that fit the ETF depth bound alone but not inside the envelope", function()
    local deep = ("h\1"):rep(64) .. "j"
    assert.is_table(pn.etf.decode(V .. deep))
    local out, msg = env.send("x", deep)
    assert.is_nil(out)
    assert.truthy(msg:find("nested deeper", 1, true), msg)
    assert.is_nil((env.reply(1, true, ("h\1"):rep(63) .. "j"))) -- reply nests two levels
    assert.is_string(env.reply(1, true, ("h\1"):rep(62) .. "j"))
  end)

  it("names and reasons that are not atom names", function()
    assert.is_nil((env.call(1, "\255", "j")))
    assert.is_nil((env.send(("x"):rep(256), "j")))
    assert.is_string(env.send(("x"):rep(255), "j"))
    assert.is_nil((env.reply_error(1, "a\0b")))
    assert.is_nil((env.reply_error(1, "\192\128")))
  end)

  it("bad argument types by raising", function()
    assert.has_error(function() env.call(-1, "echo", "j") end)
    assert.has_error(function() env.call("18446744073709551616", "echo", "j") end)
    assert.has_error(function() env.call("12x", "echo", "j") end)
    assert.has_error(function() env.call(1.5, "echo", "j") end)
    assert.has_error(function() env.ping(("\0"):rep(15)) end)
    assert.has_error(function() env.pong(("\0"):rep(17)) end)
    assert.has_error(function() env.reply(1, "ok", "j") end)
  end)
end)
