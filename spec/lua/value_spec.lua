-- The Lua <-> ETF value mapping (DESIGN.md "Value mapping", docs/values.md):
-- one block per row of the mapping table, then the error cases and bounds.
local pn = require "peernet"
local etf = pn.etf
local T = pn.tuple

local function rt(v, opts) -- encode, then decode
  local bin = assert(etf.encode(v))
  assert.are.equal(131, bin:byte(1))
  return etf.decode(bin, opts)
end

local function nested_lists(depth, leaf)
  return "\131" .. string.rep("l\0\0\0\1", depth) .. leaf .. string.rep("j", depth)
end

describe("value mapping", function()
  it("integers in int64 range stay integers", function()
    for _, n in ipairs({ 0, 1, 255, 256, -1, -256, 2147483647, -2147483648, 2147483648,
      -2147483649, 1 << 40, math.maxinteger, math.mininteger }) do
      local back = rt(n)
      assert.are.equal("integer", math.type(back))
      assert.are.equal(n, back)
    end
  end)

  it("integers beyond int64 become bigint values, in both modes, never floats", function()
    local bin = "\131n\8\0\255\255\255\255\255\255\255\255"
    for _, exact in ipairs({ false, true }) do
      local b = etf.decode(bin, { exact = exact })
      assert.are.equal("userdata", type(b))
      assert.is_true(pn.is_bigint(b))
      assert.are.equal("18446744073709551615", tostring(b))
      assert.are.equal(bin, etf.encode(b))
    end
    local b = etf.decode(bin)
    local neg = etf.decode("\131n\8\1\1\0\0\0\0\0\0\128")
    assert.are.equal("-9223372036854775809", tostring(neg))
    assert.are.equal(etf.bigint("18446744073709551615"), b)
    assert.are_not.equal(etf.bigint("18446744073709551614"), b)
    assert.is_true(etf.bigint("18446744073709551614") < b)
    assert.is_true(math.maxinteger < b)
    assert.is_true(etf.bigint("-18446744073709551615") < math.mininteger)
    assert.are.equal("-9223372036854775809", tostring(etf.bigint("-9223372036854775809")))
    assert.is_false(b == pn.atom("x"))
    assert.is_false(pn.null == b)
    assert.has_error(function() return b < 1.5 end)
    -- 2^63 is the first integer past int64: a bigint, exactly
    local p63 = etf.decode("\131n\8\0\0\0\0\0\0\0\0\128")
    assert.are.equal("9223372036854775808", tostring(p63))
    assert.is_false(pn.is_bigint(math.maxinteger))
  end)

  it("bigints of any size: decimal in and out, ==, <, <= with integers and bigints", function()
    local P70 = "1180591620717411303424"
    local b70 = pn.bigint(P70)
    assert.are.equal(pn.bigint, etf.bigint) -- one function, two names
    assert.are.equal(P70, tostring(b70))
    assert.are.equal("\131n\9\0" .. ("\0"):rep(8) .. "\64", etf.encode(b70))
    assert.are.equal(b70, pn.bigint("0001180591620717411303424"))
    assert.is_true(b70 == pn.bigint(P70))
    assert.is_false(b70 == pn.bigint("1180591620717411303425"))
    assert.is_true(pn.bigint("18446744073709551616") < b70)
    assert.is_true(b70 <= b70)
    assert.is_false(b70 < b70)
    assert.is_true(5 < b70)
    assert.is_true(math.maxinteger <= b70)
    assert.is_true(pn.bigint("-" .. P70) < math.mininteger)
    assert.is_true(pn.bigint("-" .. P70) < pn.bigint("-18446744073709551616"))
    assert.is_false(b70 < -1)
    -- a bigint never equals an integer: the two never overlap
    assert.is_false(b70 == 5)
    local huge = ("9"):rep(9000)
    assert.are.equal(huge, tostring(pn.bigint(huge)))
    assert.are.equal("-" .. huge, tostring(assert(etf.decode(etf.encode(pn.bigint("-" .. huge))))))
    local t = { [b70] = true }
    assert.is_nil(t[pn.bigint(P70)]) -- userdata: a table key by identity, like any userdata
    assert.has_error(function() return b70 + 1 end)
  end)

  it("bigint gives plain integers inside int64 and refuses anything but decimal digits", function()
    assert.are.equal(math.maxinteger, etf.bigint("9223372036854775807"))
    assert.are.equal("integer", math.type(etf.bigint("9223372036854775807")))
    assert.are.equal(math.mininteger, etf.bigint("-9223372036854775808"))
    assert.are.equal(0, etf.bigint("-0"))
    assert.are.equal(42, etf.bigint(42))
    assert.are.equal("userdata", type(etf.bigint("9223372036854775808")))
    assert.are.equal("userdata", type(etf.bigint("18446744073709551616")))
    assert.has_error(function() etf.bigint("12a") end, "bad argument #1 to 'bigint' (bigint: 'a' at position 3 is not a decimal digit (a decimal integer such as \"18446744073709551616\"))")
    assert.has_error(function() etf.bigint("") end)
    assert.has_error(function() etf.bigint("-") end)
    assert.has_error(function() etf.bigint(" 1") end)
    assert.has_error(function() etf.bigint("1e30") end)
    assert.has_error(function() etf.bigint({}) end)
    assert.has_error(function() etf.bigint(1.5) end)
    -- the bound: 4096 bytes of magnitude (9865 digits)
    local ok, err = pcall(etf.bigint, ("9"):rep(9866))
    assert.is_false(ok)
    assert.matches("beyond the limit of 4096 bytes", err)
    ok, err = pcall(etf.bigint, ("9"):rep(9865)) -- 10^9865 - 1 > 2^32768
    assert.is_false(ok)
    assert.matches("beyond the limit of 4096 bytes", err)
    local max = ("\255"):rep(4096)
    local vmax = assert(etf.decode("\131o\0\0\16\0\0" .. max))
    assert.are.equal(vmax, etf.bigint(tostring(vmax)))
  end)

  it("floats stay floats, integral ones included", function()
    for _, x in ipairs({ 0.0, 1.0, -2.5, 1e300, -1e-300, 2.0 ^ 63 }) do
      local back = rt(x)
      assert.are.equal("float", math.type(back))
      assert.are.equal(x, back)
    end
  end)

  it("booleans are the atoms true and false", function()
    assert.are.equal("\131w\4true", etf.encode(true))
    assert.are.equal("\131w\5false", etf.encode(false))
    assert.is_true(rt(true))
    assert.is_false(rt(false))
    assert.are.same({ true, false }, rt({ true, false }))
  end)

  it("the atom nil is nil at top level and peernet.null inside containers", function()
    assert.are.equal("\131w\3nil", etf.encode(nil))
    assert.are.equal("\131w\3nil", etf.encode(pn.null))
    local r = table.pack(etf.decode("\131w\3nil"))
    assert.are.equal(1, r.n)
    assert.is_nil(r[1])
    assert.are.equal("peernet.null", tostring(pn.null))
    local t = rt({ 1, pn.null, 3 })
    assert.are.equal(pn.null, t[2])
    local tup = rt(T(nil, 1))
    assert.are.equal(pn.null, tup[1])
    local m = rt({ a = pn.null })
    assert.are.equal(pn.null, m.a)
    -- atom nil as a map key: peernet.null
    local k = etf.decode("\131t\0\0\0\1w\3nila\1")
    assert.are.equal(1, k[pn.null])
  end)

  it("other atoms become strings, or atom values in exact mode", function()
    assert.are.equal("ok", etf.decode("\131w\2ok"))
    assert.are.equal("ok", etf.decode("\131d\0\2ok"))
    local a = etf.decode("\131w\2ok", { exact = true })
    assert.is_true(pn.is_atom(a))
    assert.are.equal(pn.atom("ok"), a)
    assert.are.equal("ok", tostring(a))
    assert.are.equal("\131w\2ok", etf.encode(a))
    -- a decoded string never turns back into an atom
    assert.are.equal("\131m\0\0\0\2ok", etf.encode(etf.decode("\131w\2ok")))
  end)

  it("atoms are interned: equal by identity and usable as table keys", function()
    assert.are.equal(pn.atom("ok"), pn.atom("ok"))
    assert.are_not.equal(pn.atom("ok"), pn.atom("error"))
    assert.are_not.equal(pn.atom("ok"), "ok")
    local t = { [pn.atom("ok")] = 1 }
    assert.are.equal(1, t[pn.atom("ok")])
    assert.are.equal(pn.atom("x"), pn.atom(pn.atom("x")))
    collectgarbage()
    assert.are.equal(pn.atom("ok"), etf.decode("\131w\2ok", { exact = true }))
    assert.is_false(pn.is_atom("ok"))
    assert.is_false(pn.is_atom(nil))
    assert.are.equal("peernet.atom", getmetatable(pn.atom("ok")))
  end)

  it("peernet.atom refuses names that are not atoms", function()
    assert.has_error(function() pn.atom(string.rep("x", 256)) end)
    assert.has_error(function() pn.atom("\xff\xfe") end)
    assert.has_error(function() pn.atom({}) end)
    assert.is_true(pn.is_atom(pn.atom(string.rep("\u{e9}", 255))))
  end)

  it("strings are binaries, bytes kept as they are", function()
    for _, s in ipairs({ "", "hi", "\0\1\2\255", "\xff not utf-8", string.rep("z", 70000) }) do
      assert.are.equal(s, rt(s))
    end
    assert.are.equal("\131m\0\0\0\2hi", etf.encode("hi"))
  end)

  it("lists and STRING_EXT are sequence tables; an empty table is []", function()
    assert.are.same({ 1, "two", 3.5, { 4 } }, rt({ 1, "two", 3.5, { 4 } }))
    assert.are.same({ 104, 105 }, etf.decode("\131k\0\2hi"))
    assert.are.same({}, etf.decode("\131j"))
    assert.are.equal("\131j", etf.encode({}))
    assert.is_false(etf.is_map(etf.decode("\131j")))
  end)

  it("a table with holes or other keys is a map", function()
    local back = rt({ [1] = "a", [3] = "c" })
    assert.are.same({ [1] = "a", [3] = "c" }, back)
    assert.is_true(etf.is_map(back))
    assert.are.equal(116, etf.encode({ [1] = "a", [3] = "c" }):byte(2))
    assert.are.equal(116, etf.encode({ [0] = "a" }):byte(2))
    assert.are.equal(116, etf.encode({ "a", x = 1 }):byte(2))
  end)

  it("tuples are marked tables with n", function()
    local t = T("ok", 1)
    assert.is_true(pn.is_tuple(t))
    assert.are.equal(2, t.n)
    assert.are.equal("peernet.tuple", getmetatable(t))
    local back = rt(t)
    assert.is_true(pn.is_tuple(back))
    assert.are.equal(2, back.n)
    assert.are.equal("ok", back[1])
    assert.are.equal(1, back[2])
    assert.is_false(pn.is_tuple({ "ok", 1 }))
    -- n is honoured: trailing nils are atoms nil
    local padded = rt(T(1, nil, nil))
    assert.are.equal(3, padded.n)
    assert.are.equal(pn.null, padded[3])
    local empty = rt(T())
    assert.is_true(pn.is_tuple(empty))
    assert.are.equal(0, empty.n)
  end)

  it("maps are tables keyed by the same rules, marked so %{} stays %{}", function()
    local back = rt({ text = "hi", [2] = { 3 }, [1.5] = true, nested = { a = { b = 1 } } })
    assert.are.equal("hi", back.text)
    assert.are.same({ 3 }, back[2])
    assert.is_true(back[1.5])
    assert.are.equal(1, back.nested.a.b)
    assert.is_true(etf.is_map(back))
    assert.are.equal("\131t\0\0\0\0", etf.encode(etf.map()))
    assert.are.equal("\131t\0\0\0\0", etf.encode(etf.decode("\131t\0\0\0\0")))
    assert.are.equal("\131t\0\0\0\1a\1a\9", etf.encode(etf.map({ 9 })))
    local t = {}
    assert.are.equal(t, etf.map(t))
    assert.has_error(function() etf.map(T()) end)
    -- atom keys in exact mode
    local ex = etf.decode("\131t\0\0\0\1w\4textm\0\0\0\2hi", { exact = true })
    assert.are.equal("hi", ex[pn.atom("text")])
    assert.is_nil(ex.text)
  end)

  it("refuses maps whose keys collide in Lua, never dropping one", function()
    local atom_and_binary = "\131t\0\0\0\2w\1aa\1m\0\0\0\1aa\2"
    local v, err = etf.decode(atom_and_binary)
    assert.is_nil(v)
    assert.matches("same in Lua", err)
    assert.matches('"a"', err, 1, true)
    -- exact mode keeps atom and binary apart
    local ex = etf.decode(atom_and_binary, { exact = true })
    assert.are.equal(1, ex[pn.atom("a")])
    assert.are.equal(2, ex.a)
    -- 1 and 1.0 are one Lua key in every mode
    local int_and_float = "\131t\0\0\0\2a\1a\1F\63\240\0\0\0\0\0\0a\2"
    for _, exact in ipairs({ false, true }) do
      v, err = etf.decode(int_and_float, { exact = exact })
      assert.is_nil(v)
      assert.matches("same in Lua", err)
    end
    -- true and the binary "true" do not collide: one is a boolean
    local ok = assert(etf.decode("\131t\0\0\0\2w\4truea\1m\0\0\0\4truea\2"))
    assert.are.equal(1, ok[true])
    assert.are.equal(2, ok["true"])
  end)
end)

describe("value encoding errors", function()
  local function fails(v, pattern, opts)
    local r = table.pack(etf.encode(v, opts))
    assert.are.equal(4, r.n)
    assert.is_nil(r[1])
    assert.matches(pattern, r[2])
    assert.matches("^e%l+$", r[4])
  end

  it("names the type it cannot encode", function()
    fails(print, "cannot encode a function value")
    fails({ 1, print }, "function")
    fails({ key = coroutine.create(function() end) }, "cannot encode a thread value")
    fails(io.stdout, "userdata")
    fails({ [print] = 1 }, "function")
  end)

  it("refuses NaN and infinities anywhere", function()
    fails(0 / 0, "NaN")
    fails({ x = math.huge }, "finite")
    fails(T(-math.huge), "finite")
  end)

  it("refuses nesting deeper than the bound, and accepts it exactly at the bound", function()
    local function nest(n)
      local t = "leaf"
      for _ = 1, n do t = { t } end
      return t
    end
    local ok = assert(etf.encode(nest(64)))
    assert.is_truthy(etf.decode(ok))
    fails(nest(65), "nested deeper than 64")
    local m = "leaf"
    for _ = 1, 65 do m = { k = m } end
    fails(m, "nested deeper")
  end)

  it("refuses cyclic tables", function()
    local t = {}
    t[1] = t
    fails(t, "contains itself")
    local m = { x = 1 }
    m.self = m
    fails(m, "nested deeper")
    local k = {}
    k[k] = true
    fails(k, "nested deeper")
  end)

  it("stops at the size limit: 1 MiB by default, or the caller's max", function()
    fails(string.rep("x", 1048576), "limit of 1048576")
    assert.is_truthy(etf.encode(string.rep("x", 1048576 - 6)))
    fails("hello", "limit of 9", { max = 9 })
    assert.are.equal("\131m\0\0\0\5hello", etf.encode("hello", { max = 11 }))
    local wide = {}
    for i = 1, 1000 do wide[i] = string.rep("y", 2000) end
    fails(wide, "limit")
    -- a DAG that doubles at each level would be 2^60 leaves: the limit stops it
    local d = { "x" }
    for _ = 1, 60 do d = { d, d } end
    fails(d, "limit")
  end)

  it("reads tables raw, ignoring their metamethods", function()
    local boom = function() error("metamethod called") end
    local t = setmetatable({ 1, 2 }, { __index = boom, __pairs = boom, __len = boom, __newindex = boom })
    assert.are.equal("\131k\0\2\1\2", etf.encode(t))
    local m = setmetatable({ a = 1 }, { __index = boom, __pairs = boom })
    assert.is_truthy(etf.encode(m))
  end)

  it("checks its arguments", function()
    assert.has_error(function() etf.encode() end)
    assert.has_error(function() etf.encode(1, { max = -1 }) end)
    assert.has_error(function() etf.encode(1, "x") end)
    assert.has_error(function() etf.decode({}) end)
    assert.has_error(function() etf.decode("\131a\1", { max = 0 }) end)
  end)
end)

describe("value decoding bounds", function()
  it("returns one value on success and nil, a message and a code on failure", function()
    local r = table.pack(etf.decode("\131w\5false"))
    assert.are.equal(1, r.n)
    assert.is_false(r[1])
    r = table.pack(etf.decode("\131"))
    assert.are.equal(4, r.n)
    assert.is_nil(r[1])
    assert.are.equal("string", type(r[2]))
    assert.are.equal("einval", r[4])
  end)

  it("refuses 100000 nested single-element lists at the depth bound", function()
    local v, err = etf.decode(nested_lists(100000, "a\1"))
    assert.is_nil(v)
    assert.matches("nested deeper than 64 levels at byte 320", err)
  end)

  it("accepts exactly 64 nested containers and refuses 65", function()
    local v = assert(etf.decode(nested_lists(64, "a\1")))
    for _ = 1, 63 do v = v[1] end
    assert.are.same({ 1 }, v)
    local _, err = etf.decode(nested_lists(65, "a\1"))
    assert.matches("nested deeper", err)
    -- tuples and maps count the same way
    local tuples = "\131" .. string.rep("h\1", 64) .. "a\1"
    assert.is_truthy(etf.decode(tuples))
    assert.is_nil(etf.decode("\131" .. string.rep("h\1", 65) .. "a\1"))
    local maps = "\131" .. string.rep("t\0\0\0\1a\1", 65) .. "a\1"
    assert.is_nil(etf.decode(maps))
    -- empty containers open nothing: [] at the bottom of 64 lists is fine
    assert.is_truthy(etf.decode(nested_lists(64, "j")))
  end)

  it("refuses huge counts without allocating for them", function()
    for _, bin in ipairs({
      "\131l\255\255\255\255a\1a\2",
      "\131t\255\255\255\255a\1a\2",
      "\131i\255\255\255\255a\1",
      "\131m\255\255\255\255",
      "\131k\255\255a",
      "\131v\255\255a",
      "\131h\2l\127\255\255\255a\1ja\1",
    }) do
      local v, err = etf.decode(bin)
      assert.is_nil(v)
      assert.matches("^etf: ", err)
    end
  end)

  it("decodes a large flat list and map", function()
    local parts = { "\131l", string.pack(">I4", 50000) }
    for i = 1, 50000 do parts[#parts + 1] = "b" .. string.pack(">i4", i * 1000) end
    parts[#parts + 1] = "j"
    local t = assert(etf.decode(table.concat(parts)))
    assert.are.equal(50000, #t)
    assert.are.equal(50000000, t[50000])
    local m = {}
    for i = 1, 3000 do m["k" .. i] = i end
    local back = rt(m)
    assert.are.equal(3000, back.k3000)
  end)
end)
