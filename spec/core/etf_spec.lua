-- The ETF codec against the golden vectors (../shared/vectors/etf_vectors.json)
-- and the canonical forms of OTP 26+ term_to_binary/1 (PROTOCOL.md "ETF subset").
local pn = require "peernet"
local etf = pn.etf
local T = pn.tuple
local M = etf.map

local vectors = H.vector_file("etf_vectors.json")

-- Deep comparison that also checks integer/float subtypes and tuple marks.
local function same(a, b, path)
  path = path or "value"
  if pn.is_tuple(a) ~= pn.is_tuple(b) then
    return false, path .. ": one is a tuple, the other not"
  end
  if etf.is_map(a) ~= etf.is_map(b) then
    return false, path .. ": one is marked as a map, the other not"
  end
  if type(a) ~= type(b) then
    return false, path .. ": expected " .. type(a) .. ", got " .. type(b)
  end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) or a ~= b then
      return false, string.format("%s: expected %s %s, got %s %s", path, math.type(a),
        tostring(a), math.type(b), tostring(b))
    end
    return true
  end
  if type(a) ~= "table" then
    if a ~= b then
      return false, path .. ": expected " .. tostring(a) .. ", got " .. tostring(b)
    end
    return true
  end
  for k, v in next, a do
    local ok, err = same(v, rawget(b, k), path .. "[" .. tostring(k) .. "]")
    if not ok then return false, err end
  end
  for k in next, b do
    if rawget(a, k) == nil then return false, path .. ": unexpected key " .. tostring(k) end
  end
  return true
end

local function assert_same(expected, actual, what)
  local ok, err = same(expected, actual)
  assert(ok, (what or "") .. ": " .. tostring(err))
end

local function range(a, b)
  local t = {}
  for i = a, b do t[#t + 1] = i end
  return t
end

local bytes16 = {}
for i = 1, 16 do bytes16[i] = string.char(i) end
bytes16 = table.concat(bytes16)

local NULL_ATOM = {} -- marks "decodes to nil" below (a table value cannot hold nil)
local REFUSED = {}   -- marks "decoding refuses it"

-- Written by hand from each vector's `term`, in the default mapping.
local expected = {
  small_int_0 = 0,
  small_int_255 = 255,
  int_256 = 256,
  int_neg1 = -1,
  int_2p31_minus1 = 2147483647,
  int_neg_2p31 = -2147483648,
  big_2p31 = 2147483648,
  big_2p63_minus1 = math.maxinteger,
  big_neg_2p63 = math.mininteger,
  big_2p64_minus1 = etf.bigint("18446744073709551615"), -- beyond int64: a bigint, exact
  float_0 = 0.0,
  float_1_5 = 1.5,
  float_neg_2_25e10 = -2.25e10,
  atom_ok = "ok",
  atom_error = "error",
  atom_nil = NULL_ATOM,
  atom_true = true,
  atom_false = false,
  atom_he_latin1_representable = "h\u{e9}",
  atom_non_latin1_utf8 = "\u{65e5}\u{672c}",
  atom_255_bytes = string.rep("a", 255),
  binary_empty = "",
  binary_hi = "hi",
  binary_300_bytes = string.rep("x", 300),
  charlist_abc = { 97, 98, 99 },
  list_1_2_3_string_ext = { 1, 2, 3 },
  nil_list = {},
  list_mixed = { 1, "a", "b" },
  improper_list = REFUSED,
  list_with_big_elem_list_ext = { 256, 1 },
  tuple_empty = T(),
  tuple_ok_1 = T("ok", 1),
  tuple_300_large_tuple_ext = T(table.unpack(range(1, 300))),
  map_empty = M {},
  map_text_hi = M { text = "hi" },
  map_mixed_keys = M { k = 1, [2] = { 3 } },
  map_nested_3 = M { a = M { b = M { c = 1 } } },
  env_call = T("call", 123456789012345, "echo", M { text = "hi" }),
  env_reply_ok_max_id = T("reply", etf.bigint("18446744073709551615"), T("ok", M { text = "hi" })),
  env_reply_no_such_handle = T("reply", 7, T("error", "no_such_handle")),
  env_send = T("send", "chat", M { text = "yo" }),
  env_ping = T("ping", string.rep("\0", 16)),
  env_pong = T("pong", string.rep("\0", 16)),
  env_ping_nonzero = T("ping", bytes16),
  env_rpc = T("rpc", "Elixir.Logger", "info", { "hi" }),
  env_reply_forbidden = T("reply", 1, T("error", "forbidden")),
}

describe("etf golden vectors", function()
  it("has the 46 valid and 21 must_reject entries this spec was written for", function()
    assert.are.equal(46, #vectors.valid)
    assert.are.equal(21, #vectors.must_reject)
    local n = 0
    for _ in pairs(expected) do n = n + 1 end
    assert.are.equal(46, n)
  end)

  it("decodes every valid vector to the documented Lua value", function()
    local seen = 0
    for _, v in ipairs(vectors.valid) do
      local want = expected[v.name]
      assert(want ~= nil, "no expectation written for vector " .. v.name)
      local bin = H.unhex(v.hex)
      local r = table.pack(etf.decode(bin))
      if want == REFUSED then
        assert.is_nil(r[1], v.name)
        assert.matches("improper list", r[2], 1, true)
      elseif want == NULL_ATOM then
        assert.are.equal(1, r.n, v.name)
        assert.is_nil(r[1], v.name)
      else
        assert.are.equal(1, r.n, v.name .. ": " .. tostring(r[2]))
        assert_same(want, r[1], v.name)
      end
      -- OTP 26+ spelling (atoms as SMALL_ATOM_UTF8) decodes to the same value.
      if v.hex_minor_version_2 then
        local r2 = table.pack(etf.decode(H.unhex(v.hex_minor_version_2)))
        if want == NULL_ATOM then
          assert.is_nil(r2[1])
          assert.are.equal(1, r2.n)
        else
          assert_same(want, r2[1], v.name .. " (minor version 2)")
        end
      end
      seen = seen + 1
    end
    assert.are.equal(46, seen)
  end)

  it("re-encodes every valid vector decoded in exact mode to its OTP 26+ bytes", function()
    local seen = 0
    for _, v in ipairs(vectors.valid) do
      local bin = H.unhex(v.hex)
      local value, err = etf.decode(bin, { exact = true })
      if v.name == "improper_list" then
        assert.is_nil(value)
        assert.matches("improper list", err, 1, true)
      else
        assert.is_nil(err, v.name)
        local out = assert(etf.encode(value))
        assert.are.equal(v.hex_minor_version_2 or v.hex, H.hex(out), v.name)
      end
      seen = seen + 1
    end
    assert.are.equal(46, seen)
  end)

  it("keeps atoms and big integers exact in exact mode", function()
    local function exact(name)
      for _, v in ipairs(vectors.valid) do
        if v.name == name then return etf.decode(H.unhex(v.hex), { exact = true }) end
      end
      error("no vector " .. name)
    end
    assert.are.equal(pn.atom("ok"), exact("atom_ok"))
    assert.are.equal(pn.atom("h\u{e9}"), exact("atom_he_latin1_representable"))
    assert.are.equal(true, exact("atom_true"))
    local big = exact("big_2p64_minus1")
    assert.are.equal(etf.bigint("18446744073709551615"), big)
    assert.are.equal("18446744073709551615", tostring(big))
    assert.are.equal(math.maxinteger, exact("big_2p63_minus1"))
    local call = exact("env_call")
    assert.are.equal(pn.atom("call"), call[1])
    assert.are.equal("hi", call[4][pn.atom("text")])
    local reply = exact("env_reply_ok_max_id")
    assert.are.equal(etf.bigint("18446744073709551615"), reply[2])
  end)

  it("refuses every must_reject vector except unknown_atom_for_this_vm", function()
    local seen = 0
    for _, v in ipairs(vectors.must_reject) do
      local bin = H.unhex(v.hex)
      if v.name == "unknown_atom_for_this_vm" then
        assert.are.equal("zz_never_existing_atom_1", (etf.decode(bin)))
        assert.are.equal(pn.atom("zz_never_existing_atom_1"), (etf.decode(bin, { exact = true })))
      else
        for _, exact in ipairs({ false, true }) do
          local r = table.pack(etf.decode(bin, { exact = exact }))
          assert.are.equal(4, r.n, v.name)
          assert.is_nil(r[1], v.name)
          assert.are.equal("string", type(r[2]), v.name)
          assert.are.equal("einval", r[4], v.name)
          assert.matches("^etf: ", r[2])
        end
      end
      seen = seen + 1
    end
    assert.are.equal(21, seen)
  end)

  it("names what it refused", function()
    local function err_of(hex) return (select(2, etf.decode(H.unhex(hex)))) end
    assert.matches("pid", err_of("835864000d6e6f6e6f6465406e6f686f7374000000600000000000000000"))
    assert.matches("compressed", err_of("835000001c26789c"))
    assert.matches("trailing", err_of("836400026f6b00"))
    assert.matches("version byte", err_of("68026400026f6b6101"))
    assert.matches("empty", err_of(""))
    assert.matches("remaining", err_of("836cffffffff61016102"))
    assert.matches("truncated", err_of("836d000000056869"))
  end)
end)

describe("etf big integers", function()
  -- SMALL_BIG / LARGE_BIG of n magnitude bytes, little-endian.
  local function big(neg, mag)
    if #mag <= 255 then return "\131n" .. string.char(#mag, neg and 1 or 0) .. mag end
    return "\131o" .. string.pack(">I4", #mag) .. string.char(neg and 1 or 0) .. mag
  end
  local P70 = big(false, ("\0"):rep(8) .. "\64") -- 2^70

  it("decodes integers of any size up to the limit exactly, and re-encodes them byte for byte", function()
    local v = assert(etf.decode(P70))
    assert.is_true(pn.is_bigint(v))
    assert.are.equal("1180591620717411303424", tostring(v))
    assert.are.equal(P70, etf.encode(v))
    local neg = assert(etf.decode(big(true, ("\0"):rep(8) .. "\64")))
    assert.are.equal("-1180591620717411303424", tostring(neg))
    -- 2^2048 needs 257 bytes: LARGE_BIG, as term_to_binary writes it.
    local p2048 = big(false, ("\0"):rep(256) .. "\1")
    assert.are.equal(111, p2048:byte(2))
    local v2048 = assert(etf.decode(p2048))
    assert.are.equal(p2048, etf.encode(v2048))
    assert.matches("^3231700607131100730071487668866995196044%d+9596230656$", tostring(v2048)) -- 2^2048
    assert.are.equal(617, #tostring(v2048))
    -- the largest magnitude accepted, and one byte more
    local max = big(false, ("\255"):rep(4096))
    local vmax = assert(etf.decode(max))
    assert.are.equal(max, etf.encode(vmax))
    assert.are.equal(9865, #tostring(vmax))
    local v2, err, _, code = etf.decode(big(false, ("\255"):rep(4097)))
    assert.is_nil(v2)
    assert.are.equal("einval", code)
    assert.matches("integer of 4097 bytes at byte 0 is beyond the limit of 4096 bytes", err, 1, true)
  end)

  it("reads non-minimal spellings as the integer they stand for", function()
    -- high zero bytes, LARGE_BIG for a small value, negative zero
    assert.are.equal(5, etf.decode(big(false, "\5\0\0")))
    assert.are.equal(-5, etf.decode("\131o\0\0\0\1\1\5"))
    assert.are.equal(0, etf.decode(big(true, "")))
    local v = assert(etf.decode(big(false, ("\0"):rep(8) .. "\64" .. ("\0"):rep(300))))
    assert.are.equal(P70, etf.encode(v))
    assert.are.equal(etf.decode(P70), v)
  end)

  it("orders big integers among the others as map keys", function()
    local b70, b64 = etf.decode(P70), etf.bigint("18446744073709551616")
    local bin = assert(etf.encode(M { [b70] = 1, [b64] = 2, [-1] = 3, [etf.bigint("-" .. tostring(b70))] = 4 }))
    -- keys in Erlang's order: -2^70, -1, 2^64, 2^70
    local back = assert(etf.decode(bin))
    assert.are.equal(H.hex(bin), H.hex(assert(etf.encode(back))))
    local _, k1 = bin:find("t\0\0\0\4", 1, true)
    assert.are.equal(110, bin:byte(k1 + 1)) -- the first key is the negative bigint
    assert.are.equal(1, bin:byte(k1 + 3))
  end)
end)

describe("etf canonical encoding", function()
  local function enc(v) return H.hex(assert(etf.encode(v))) end

  it("writes integers as SMALL_INTEGER, INTEGER or minimal SMALL_BIG", function()
    assert.are.equal("836100", enc(0))
    assert.are.equal("8361ff", enc(255))
    assert.are.equal("836200000100", enc(256))
    assert.are.equal("8362ffffffff", enc(-1))
    assert.are.equal("836280000000", enc(-2147483648))
    assert.are.equal("83627fffffff", enc(2147483647))
    assert.are.equal("836e040000000080", enc(2147483648))
    assert.are.equal("836e040101000080", enc(-2147483649))
    assert.are.equal("836e050000000000" .. "01", enc(1 << 32))
    assert.are.equal("836e0800ffffffffffffff7f", enc(math.maxinteger))
    assert.are.equal("836e08010000000000000080", enc(math.mininteger))
    assert.are.equal("836e0800ffffffffffffffff", enc(etf.bigint("18446744073709551615")))
    assert.are.equal("836e0801ffffffffffffffff", enc(etf.bigint("-18446744073709551615")))
    assert.are.equal("836e08010100000000000080", enc(etf.bigint("-9223372036854775809")))
  end)

  it("writes floats as NEW_FLOAT and refuses NaN and infinities", function()
    assert.are.equal("83463ff0000000000000", enc(1.0))
    assert.are.equal("83468000000000000000", enc(-0.0))
    for _, bad in ipairs({ 0 / 0, math.huge, -math.huge }) do
      local v, err = etf.encode(bad)
      assert.is_nil(v)
      assert.matches("finite", err)
    end
  end)

  it("writes atoms as SMALL_ATOM_UTF8 up to 255 bytes, ATOM_UTF8 beyond", function()
    assert.are.equal("8377026f6b", enc(pn.atom("ok")))
    assert.are.equal("837700", enc(pn.atom("")))
    assert.are.equal("8377ff" .. string.rep("61", 255), enc(pn.atom(string.rep("a", 255))))
    -- 128 characters, 256 bytes: still a valid atom, in the 2-byte length form
    local e128 = string.rep("\u{e9}", 128)
    assert.are.equal("83760100" .. string.rep("c3a9", 128), enc(pn.atom(e128)))
    local wide = string.rep("\u{1F600}", 255) -- 255 characters of 4 bytes
    assert.are.equal("837603fc", enc(pn.atom(wide)):sub(1, 8))
    assert.has_error(function() pn.atom(string.rep("a", 256)) end)
    assert.has_error(function() pn.atom("\xff") end)
  end)

  it("accepts atoms of 255 characters and refuses 256 when decoding", function()
    local wide = string.rep("\u{1F600}", 255)
    assert.are.equal(wide, etf.decode("\131\118\3\252" .. wide))
    local v, err = etf.decode("\131\118\3\253" .. wide .. "a")
    assert.is_nil(v)
    assert.matches("255 characters", err)
    v, err = etf.decode("\131\100\1\0" .. string.rep("a", 256))
    assert.is_nil(v)
    assert.matches("255 characters", err)
  end)

  it("refuses atoms that are not strict UTF-8", function()
    for _, bad in ipairs({ "\xc3\x28", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe6\x97" }) do
      local v, err = etf.decode("\131\119" .. string.char(#bad) .. bad)
      assert.is_nil(v)
      assert.matches("UTF%-8", err)
    end
  end)

  it("writes binaries for strings and [] for an empty table", function()
    assert.are.equal("836d00000000", enc(""))
    assert.are.equal("836d000000026869", enc("hi"))
    assert.are.equal("836a", enc({}))
  end)

  it("writes byte lists as STRING_EXT up to 65535 elements, as LIST otherwise", function()
    assert.are.equal("836b0003616263", enc({ 97, 98, 99 }))
    local t = {}
    for i = 1, 65535 do t[i] = i % 256 end
    assert.are.equal("836bffff0102", enc(t):sub(1, 12))
    t[65536] = 0
    assert.are.equal("836c000100006101", enc(t):sub(1, 16))
    assert.are.equal("836c00000002620000010061016a", enc({ 256, 1 }))
    assert.are.equal("836c0000000262ffffffff61016a", enc({ -1, 1 }))
    assert.are.equal("836c0000000146" .. "3ff0000000000000" .. "6a", enc({ 1.0 }))
  end)

  it("writes tuples as SMALL_TUPLE or LARGE_TUPLE, honouring n", function()
    assert.are.equal("836800", enc(T()))
    assert.are.equal("8368036101" .. "7703" .. "6e696c" .. "7703" .. "6e696c", enc(T(1, nil, nil)))
    local big = enc(T(table.unpack(range(1, 256))))
    assert.are.equal("836900000100", big:sub(1, 12))
  end)

  it("orders map keys as Erlang does: numbers, atoms, tuples, maps, [], lists, binaries", function()
    local keys = {
      -5, 1, math.maxinteger, etf.bigint("18446744073709551615"), -- integers by value
      0.5, 2.5,                             -- every integer before every float
      pn.atom("a"), pn.atom("b"), pn.atom("z"), pn.atom("\u{e9}"), -- atoms by code point
      T(9), T(1, 2), T(1, 3),               -- tuples by arity, then elements
      { x = 1 },                            -- maps
      {},                                   -- []
      { 1, 2 }, { 1, 2, 0 }, { 1, 300 }, { 2 }, -- lists element by element
      "", "a", "ab", "b", "\u{e9}",         -- binaries bytewise, then by length
    }
    local map, want = {}, {}
    for i, k in ipairs(keys) do
      map[k] = i
      want[#want + 1] = assert(etf.encode(k)):sub(2) .. assert(etf.encode(i)):sub(2)
    end
    local expect = "\131t" .. string.pack(">I4", #keys) .. table.concat(want)
    assert.are.equal(H.hex(expect), H.hex(assert(etf.encode(map))))
  end)

  it("orders map keys that are maps by size, then all keys, then values", function()
    local m_small = { z = 0 }
    local m1 = { a = 9, c = 0 }
    local m2 = { a = 0, d = 0 }
    local m3 = { a = 1, d = 0 }
    local map = { [m3] = 3, [m2] = 2, [m1] = 1, [m_small] = 0 }
    local parts = {}
    for i, k in ipairs({ m_small, m1, m2, m3 }) do
      parts[i] = assert(etf.encode(k)):sub(2) .. assert(etf.encode(i - 1)):sub(2)
    end
    assert.are.equal(H.hex("\131t\0\0\0\4" .. table.concat(parts)), H.hex(assert(etf.encode(map))))
  end)

  it("refuses map keys that encode to the same term", function()
    local v, err = etf.encode({ [true] = 1, [pn.atom("true")] = 2 })
    assert.is_nil(v)
    assert.matches("same term", err)
    v, err = etf.encode({ [{ 1 }] = 1, [{ 1 }] = 2 })
    assert.is_nil(v)
    assert.matches("same term", err)
    v, err = etf.encode({ [pn.null] = 1, [pn.atom("nil")] = 2 })
    assert.is_nil(v)
    assert.matches("same term", err)
  end)

  it("round-trips the envelopes byte for byte", function()
    assert.are.equal("83680277026f6b6101", enc(T(pn.atom("ok"), 1)))
    assert.are.equal(
      "836804770463616c6c6e060079df0d86487077046563686f74000000017704746578746d000000026869",
      enc(T(pn.atom("call"), 123456789012345, pn.atom("echo"), { [pn.atom("text")] = "hi" })))
  end)
end)

describe("etf decoder bounds", function()
  local function refused(bin, pattern)
    local r = table.pack(etf.decode(bin))
    assert.are.equal(4, r.n)
    assert.is_nil(r[1])
    assert.are.equal("einval", r[4])
    if pattern then assert.matches(pattern, r[2]) end
  end

  it("refuses integers wider than 4096 bytes, truncated ones and odd sign bytes", function()
    refused("\131\110\255\0" .. string.rep("\1", 254), "truncated")
    refused("\131\111\0\0\16\1\0" .. string.rep("\1", 4097), "beyond the limit of 4096 bytes")
    refused("\131\111\255\255\255\255\0\1", "truncated")
    refused("\131\110\1\2\1", "sign")
    refused("\131\111\0\0\0\1\2\1", "sign")
  end)

  it("refuses NaN and infinite floats on input", function()
    refused("\131F\127\240\0\0\0\0\0\0", "NaN or infinite")
    refused("\131F\255\240\0\0\0\0\0\0", "NaN or infinite")
    refused("\131F\127\248\0\0\0\0\0\1", "NaN or infinite")
  end)

  it("refuses tags outside the subset", function()
    refused("\131s\2ok", "SMALL_ATOM")
    refused("\131c" .. string.rep("0", 31), "old float")
    refused("\131M\0\0\0\1\3\32", "bit binary")
  end)

  it("refuses counts the remaining input cannot hold, before reading on", function()
    refused("\131l\255\255\255\255", "remaining")
    refused("\131t\128\0\0\0" .. string.rep("a\1", 100), "remaining")
    refused("\131i\0\1\0\0" .. string.rep("a\1", 255), "remaining")
    refused("\131m\255\255\255\255hi", "truncated")
    refused("\131k\255\255abc", "truncated")
    refused("\131h\5a\1a\2", "remaining")
    refused("\131h\3a\1a\2", "truncated")
  end)

  it("accepts LIST_EXT and STRING_EXT of length 0 as []", function()
    assert.are.same({}, etf.decode("\131l\0\0\0\0j"))
    assert.are.same({}, etf.decode("\131k\0\0"))
    refused("\131l\0\0\0\0a\1", "improper")
  end)

  it("refuses improper tails at any depth", function()
    refused("\131l\0\0\0\1a\1a\2", "improper")
    refused("\131h\1l\0\0\0\1a\1m\0\0\0\0", "improper")
  end)

  it("refuses trailing bytes after a list tail and a nested version byte", function()
    refused("\131l\0\0\0\1a\1jj", "trailing")
    refused("\131\131a\1", "version")
  end)

  it("applies the caller's input bound", function()
    local v, err = etf.decode("\131m\0\0\0\5hello", { max = 10 })
    assert.is_nil(v)
    assert.matches("limit", err)
    assert.are.equal("hello", etf.decode("\131m\0\0\0\5hello", { max = 11 }))
  end)
end)
