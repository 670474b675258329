-- The CLI's value plumbing, in process: ARGS literals (peernet.args, src/luamod/bind_args.c),
-- the pretty and JSON printers (lua/peernet/format.lua) and peernet.qr.
local peernet = require "peernet"
local args = peernet.args
local format = require "peernet.format"

local function roundtrip(text)
  local ok, v = args.parse(text)
  assert(ok, v)
  return peernet.etf.decode(assert(peernet.etf.encode(v)), { exact = true })
end

describe("ARGS literals", function()
  it("evaluate Lua table constructors with the value constructors in scope", function()
    local ok, v = args.parse('{room = "kitchen", level = 3, on = true, t = tuple(atom"ok", null), m = map{}}')
    assert.is_true(ok)
    assert.equal("kitchen", v.room)
    assert.is_true(peernet.is_tuple(v.t))
    assert.equal(peernet.atom("ok"), v.t[1])
    assert.equal(peernet.null, v.t[2])
    assert.is_true(peernet.etf.is_map(v.m))
    assert.same({ true, nil }, { args.parse("nil") })
  end)

  it("see nothing of the host: no globals, no string methods", function()
    for _, text in ipairs { "os.exit(3)", "io", "require('os')", "print('x')", "('x'):rep(3)",
      "string.rep('x', 3)", "_G", "load('return 1')" } do
      local ok, v = args.parse(text)
      if ok then
        assert.is_nil(v, text) -- a bare unknown name is nil, nothing more
      else
        assert.matches("^ARGS", v)
      end
    end
    assert.equal("abc", ("abc"):upper():lower()) -- string methods are back afterwards
  end)

  it("are bounded in size, computation and memory, with clear errors", function()
    local ok, e = args.parse(("1"):rep(args.MAX_TEXT + 1))
    assert.is_false(ok)
    assert.matches("limit", e)
    ok, e = args.parse("(function() local n = 0 while true do n = n + 1 end end)()")
    assert.is_false(ok)
    assert.matches("too much computation", e)
    ok, e = args.parse("(function() local s = 'x' for i = 1, 40 do s = s .. s end return s end)()")
    assert.is_false(ok)
    assert.matches("too much memory", e)
    ok, e = args.parse("{1,")
    assert.is_false(ok)
    assert.matches("^ARGS:1:", e)
    ok, e = args.parse("1, 2")
    assert.is_false(ok)
    assert.matches("one value", e)
    ok, e = args.parse("  ")
    assert.is_false(ok)
    assert.is_nil(args.encode("{function() end}"))
  end)
end)

describe("pretty printing", function()
  it("prints a Lua literal that reads back as the same term", function()
    for _, text in ipairs {
      '{1, 2, "x"}', 'tuple(atom"ok", {by = "ab", on = true})', '"\\x00\\xff"', "map{}",
      "map{[1] = 2}", "{[1] = 2, [3] = 4}", "1.0", "-0.5", "1e+300", "nil", "null", "true",
      'bigint"18446744073709551615"', "{a = {b = {}}}", '"héllo\\n\\"q\\""', '{["not ident"] = 1, ["end"] = 2}',
      "tuple()", '{[tuple(1)] = "k"}', 'bigint"1180591620717411303424"', 'bigint"-18446744073709551616"',
      'bigint"' .. ("9"):rep(700) .. '"', '{[bigint"1180591620717411303424"] = 1, [2] = bigint"-1180591620717411303424"}',
    } do
      local v = roundtrip(text)
      local printed = format.pretty(v)
      assert.equal(printed, format.pretty(roundtrip(printed)), text)
      assert.equal(assert(peernet.etf.encode(v)), assert(peernet.etf.encode(roundtrip(printed))), text)
    end
    assert.equal('tuple(atom"ok", {by = "ab", on = true})', format.pretty(roundtrip('tuple(atom"ok", {on = true, by = "ab"})')))
    assert.equal('"\\x00\\xff"', format.pretty("\0\255"))
    assert.equal("1.0", format.pretty(1.0))
  end)
end)

describe("map keys", function()
  it("print in one order: by type, numbers and strings by value, others by their text", function()
    local v = roundtrip('map{[bigint"' .. ("3"):rep(30) .. '"] = 1, b = 2, [2] = 3, [1.5] = 4, a = 5, '
      .. '[true] = 6, [false] = 7, [bigint"' .. ("2"):rep(30) .. '"] = 8, [-7] = 9}')
    assert.equal('{[false] = 7, [true] = 6, [-7] = 9, [1.5] = 4, [2] = 3, a = 5, b = 2, '
      .. '[bigint"' .. ("2"):rep(30) .. '"] = 8, [bigint"' .. ("3"):rep(30) .. '"] = 1}', format.pretty(v))
    assert.equal('{"false":7,"true":6,"-7":9,"1.5":4,"2":3,"a":5,"b":2,"'
      .. ("2"):rep(30) .. '":8,"' .. ("3"):rep(30) .. '":1}', format.json(v))
  end)

  it("are turned into text once each, not once per comparison (a big key costs ms)", function()
    local calls, t = 0, {}
    for i = 1, 64 do
      t[setmetatable({ i = i }, { __tostring = function(k)
        calls = calls + 1
        return string.format("k%03d", k.i)
      end })] = i
    end
    local printed = format.pretty(t)
    assert.equal(64, calls)
    local last = 0
    for n in printed:gmatch("%] = (%d+)") do -- values follow their keys' text order
      assert.is_true(tonumber(n) > last, printed)
      last = tonumber(n)
    end
  end)
end)

describe("JSON output", function()
  local json = require "dkjson"
  it("maps terms as docs/cli.md says", function()
    local v = roundtrip('{n = 1, f = 1.5, s = "hi", a = atom"ok", t = tuple(1, "x"), l = {}, m = map{}, '
      .. 'z = null, bin = "\\xff", [7] = "seven", big = bigint"18446744073709551615"}')
    local text = format.json(v)
    assert.equal('{"7":"seven","a":"ok","big":18446744073709551615,"bin":{"$base64":"/w=="},'
      .. '"f":1.5,"l":[],"m":{},"n":1,"s":"hi","t":{"$tuple":[1,"x"]},"z":null}', text)
    assert.is_table(json.decode(text))
    assert.equal('"tab\\tq\\"\\u0001"', format.json('tab\tq"\1'))
    assert.equal("null", format.json(nil))
    -- integers of any size print all their digits, as JSON numbers
    assert.equal('[1180591620717411303424,-1180591620717411303424]',
      format.json(roundtrip('{bigint"1180591620717411303424", bigint"-1180591620717411303424"}')))
  end)
end)

describe("peernet.qr", function()
  it("gives rows of booleans with a 4-module quiet zone", function()
    local key = ("ab"):rep(32) -- 64 hex characters, as `id --qr` encodes
    local m = assert(peernet.qr(key))
    assert.equal(5, m.version) -- 64 bytes at level M
    assert.equal(37 + 8, m.size)
    assert.equal(m.size, #m)
    for y = 1, m.size do
      assert.equal(m.size, #m[y])
      for x = 1, m.size do
        if x <= 4 or y <= 4 or x > m.size - 4 or y > m.size - 4 then assert.is_false(m[y][x]) end
      end
    end
    -- the finder pattern's corner starts right after the quiet zone
    assert.is_true(m[5][5])
    assert.is_true(m[5][11])
    assert.is_false(m[6][6])
    assert.equal(1, assert(peernet.qr(key, "L")).version == 4 and 1 or 0)
    local nothing, e = peernet.qr("")
    assert.is_nil(nothing)
    assert.matches("1%.%.1024", e)
    assert.is_nil((peernet.qr(("x"):rep(1025))))
  end)

  it("renders two module rows per text line", function()
    local m = assert(peernet.qr("hello"))
    local text = format.qr_text(m)
    local lines = 0
    for l in text:gmatch("[^\n]+") do
      lines = lines + 1
      -- each line sets black on white itself, then resets
      assert.equal(format.QR_ON, l:sub(1, #format.QR_ON))
      assert.equal(format.QR_OFF, l:sub(-#format.QR_OFF))
      assert.equal(m.size, utf8.len(l:sub(#format.QR_ON + 1, -#format.QR_OFF - 1)))
    end
    assert.equal((m.size + 1) // 2, lines)
  end)
end)
