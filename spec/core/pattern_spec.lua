-- peernet.pattern and the sandbox's string.find/match/gmatch/gsub: Lua 5.4
-- patterns on a matcher with a step budget. Every case runs through the
-- real string library of the lua5.4 running busted and through ours; the
-- results, and the error messages, must be the same. Then the bound: the
-- patterns that froze the host raise "pattern too complex", in a sandboxed
-- handler too, while another script goes on answering.
local peernet = require "peernet"
local N = require "support.net"
local P = peernet.pattern
local STEPS = P.steps_max

-- Both libraries are called from this one Lua function, so that an argument
-- error names the function the same way ("bad argument #3 to 'f'").
local function via(f, ...)
  local r = table.pack(f(...))
  return r
end

local function gmatch_all(f, s, p, init)
  local out = {}
  for a, b, c in f(s, p, init) do
    out[#out + 1] = { a, b, c }
    if #out > 200 then break end -- a runaway iterator shows as a difference
  end
  return { n = 1, out }
end

local function outcome(lib, name, ...)
  local ok, r
  if name == "gmatch" then
    ok, r = pcall(gmatch_all, lib.gmatch, ...)
  else
    ok, r = pcall(via, lib[name], ...)
  end
  if not ok then return { err = tostring(r) } end
  return r
end

local function describe_args(name, ...)
  local parts = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    parts[#parts + 1] = type(v) == "string" and string.format("%q", v) or tostring(v)
  end
  return name .. "(" .. table.concat(parts, ", ") .. ")"
end

local function same(name, ...)
  local want = outcome(string, name, ...)
  local got = outcome(P, name, ...)
  assert.are.same(want, got, describe_args(name, ...))
end

local upper = function(s) return s:upper() end
local keep = function() return nil end
local pos_and_text = function(a, b) return tostring(a) .. ":" .. tostring(b) end
local lookup = { hello = "HI", world = false, x = 42, a = "A" }

-- { function, subject, pattern, more arguments... }
local cases = {
  -- plain text, init, and the plain flag
  { "find", "hello world", "o" },
  { "find", "hello world", "o", 6 },
  { "find", "hello world", "o", -3 },
  { "find", "hello world", "o", -100 },
  { "find", "hello world", "o", 0 },
  { "find", "hello world", "", 12 },
  { "find", "hello world", "", 13 },
  { "find", "hello world", "", 100 },
  { "find", "abc", "", 4 },
  { "find", "abc", "", -1 },
  { "find", "abc", "c", math.mininteger },
  { "find", "abc", "c", math.maxinteger },
  { "find", "a.b", ".", 1, true },
  { "find", "a.b", ".", 2, true },
  { "find", "a+b", "+", 1, true },
  { "find", "a+b", "a+", 1, false },
  { "find", "a(b", "(", 1, 1 },
  { "find", "", "" },
  { "find", "", "", 1, true },
  { "find", "", "a" },
  { "find", "aaa", "aa", 2 },
  { "find", "ab]c", "]" },
  { "find", 12345, 34 },
  { "find", 1.5, "%." },
  { "match", "hello world", "o", 6 },
  { "match", "hello", ".", -2 },
  { "match", "hello", "", 10 },
  { "match", "hello", "()", 6 },
  { "match", "hello", "()", 7 },
  -- classes
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%a", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%A", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%c", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%C", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%d", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%D", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%g", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%G", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%l", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%L", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%p", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%P", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200\v\f\r", "%s", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200\v\f\r", "%S", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%u", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%U", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%w", "." },
  { "gsub", "Hello, World! 123 _x\t\n\0\127\200", "%W", "." },
  { "gsub", "Hello, World! 0x1fAG", "%x", "." },
  { "gsub", "Hello, World! 0x1fAG", "%X", "." },
  { "gsub", "a\0b\0", "%z", "Z" },
  { "gsub", "a\0b\0", "%Z", "N" },
  { "gsub", "a.b%c(d)e[f]g^h$i*j+k-l?m", "%.", "!" },
  { "gsub", "a.b%c(d)e[f]g^h$i*j+k-l?m", "%%", "!" },
  { "gsub", "a.b%c(d)e[f]g^h$i*j+k-l?m", "%(", "!" },
  { "gsub", "a.b%c(d)e[f]g^h$i*j+k-l?m", "%]", "!" },
  { "gsub", "a.b%c(d)e[f]g^h$i*j+k-l?m", "%^", "!" },
  { "gsub", "a.b%c(d)e[f]g^h$i*j+k-l?m", "%$", "!" },
  { "gsub", "a.b%c(d)e[f]g^h$i*j+k-l?m", "%-", "!" },
  { "gsub", "a.b%c(d)e[f]g^h$i*j+k-l?m", ".", "!" },
  { "gsub", "\0\1\255", "\0", "0" },
  { "find", "a\0b", "%z" },
  { "find", "a\0b", "[\0]" },
  { "find", "a\0b", "b\0?" },
  -- sets
  { "gsub", "a]b[c-d^e%f", "[]]", "!" },
  { "gsub", "a]b[c-d^e%f", "[^]]", "!" },
  { "gsub", "a]b[c-d^e%f", "[%]]", "!" },
  { "gsub", "a]b[c-d^e%f", "[]a]", "!" },
  { "gsub", "a]b[c-d^e%f", "[a-]", "!" },
  { "gsub", "a]b[c-d^e%f", "[-a]", "!" },
  { "gsub", "a]b[c-d^e%f", "[%-]", "!" },
  { "gsub", "a]b[c-d^e%f", "[a-c]", "!" },
  { "gsub", "a]b[c-d^e%f", "[c-a]", "!" },
  { "gsub", "a]b[c-d^e%f", "[^a-c]", "!" },
  { "gsub", "a]b[c-d^e%f", "[%^]", "!" },
  { "gsub", "a]b[c-d^e%f", "[a^]", "!" },
  { "gsub", "a]b[c-d^e%f", "[[]", "!" },
  { "gsub", "a]b[c-d^e%f", "[%%]", "!" },
  { "gsub", "a]b[c-d^e%f", "[%a-]", "!" },
  { "gsub", "a]b[c-d^e%f", "[a-%a]", "!" },
  { "gsub", "a]b[c-d^e%f", "[%w_]", "!" },
  { "gsub", "a]b[c-d^e%f", "[^%w]", "!" },
  { "gsub", "a]b[c-d^e%f", "[.]", "!" },
  { "gsub", "a]b[c-d^e%f", "[-]", "!" },
  { "gsub", "a]b[c-d^e%f", "[a-b-f]", "!" },
  { "gsub", "a]b[c-d^e%f", "[]-a]", "!" },
  { "gsub", "a]b[c-d^e%f", "[^-]", "!" },
  { "gsub", "a]b[c-d^e%f", "[^]", "!" },
  { "gsub", "\0\1\31\127\128\200\255", "[\128-\255]", "!" },
  { "gsub", "\0\1\31\127\128\200\255", "[\0-\31]", "!" },
  { "gsub", "\0\1\31\127\128\200\255", "[\200]", "!" },
  { "gsub", "\0\1\31\127\128\200\255", "[^\0]", "!" },
  { "gsub", "abc123", "[%d%l]+", "<%0>" },
  { "gsub", "x*+?y", "[*+?]", "." },
  -- quantifiers
  { "match", "aaab", "a*" },
  { "match", "aaab", "a+" },
  { "match", "aaab", "a-b" },
  { "match", "aaab", "a-" },
  { "match", "aaab", "a?a?b" },
  { "match", "b", "a+" },
  { "match", "aaab", "(a*)(a*)" },
  { "match", "aaab", "(a-)(a*)" },
  { "match", "aaab", "(a+)(a+)" },
  { "match", "<<a>>", "<(.-)>" },
  { "match", "<<a>>", "<(.*)>" },
  { "match", "key=val; k2=v2", "(%w+)=(%w+)$" },
  { "match", "  trim me  ", "^%s*(.-)%s*$" },
  { "match", "abc", "a*?" },
  { "match", "a?", "a%?" },
  { "match", "ab", "[ab]-b" },
  { "match", "aXb", ".-X" },
  { "find", "aaa", "a-", 2 },
  { "find", "a+", "a+", 1, true },
  -- anchors
  { "find", "abc", "^b" },
  { "find", "abc", "^a" },
  { "find", "abc", "^b", 2 },
  { "find", "abc", "c$" },
  { "find", "abc", "b$" },
  { "find", "abc", "$" },
  { "find", "abc", "^$" },
  { "find", "", "^$" },
  { "find", "abc", "^" },
  { "find", "a$b", "a$b" },
  { "find", "a$", "(a$)" },
  { "find", "a^b", "a^b" },
  { "find", "a^b", "^^" },
  { "find", "^a", "^^a" },
  { "match", "abc", "^(a)(b)$" },
  { "match", "ab", "^(a)(b)$" },
  { "gsub", "hello hello", "^hello", "X" },
  { "gsub", "hello", "^", "X" },
  { "gsub", "hello", "$", "X" },
  { "gsub", "hello", "^$", "X" },
  { "gsub", "", "^$", "X" },
  { "gmatch", "^a^a", "^a" },
  { "gmatch", "aaa", "^a" },
  { "gmatch", "a$", "a$" },
  -- captures, positions, back-references
  { "find", "hello world", "(o)(r)" },
  { "find", "hello world", "()ll()" },
  { "find", "hello", "()" },
  { "find", "hello", "()", 6 },
  { "match", "hello", "()(l+)()" },
  { "match", "hello", "((l)(l))" },
  { "match", "hello", "(h)((e)(l))" },
  { "match", "date: 2024-05-06", "((%d+)-(%d+)-(%d+))" },
  { "match", "abcabc", "(abc)%1" },
  { "match", "abcab", "(abc)%1" },
  { "match", "aa bb cd", "(%a)%1" },
  { "match", "xyzxyz", "(x(y)z)%1" },
  { "match", "xyzy", "(x(y)z)%2" },
  { "match", "\"quoted\" and 'single'", "([\"'])(.-)%1" },
  { "match", "aa", "()a%1" },
  { "match", "abab", "((a)b)%2" },
  { "match", "a", "(a)%1?" },
  { "gsub", "hello world", "(o)", "[%1]" },
  { "gsub", "hello world", "()o", "[%1]" },
  { "gsub", "hello world", "o", "[%1]" },
  { "gsub", "hello world", "o", "[%0%0]" },
  { "gsub", "hello world", "(l)(l)", "%2%1" },
  { "gsub", "abc", "%w", "%%" },
  { "gsub", "abc", "%w", "%%%0%%" },
  { "gsub", "hello world", "(%w+) (%w+)", "%2 %1" },
  -- %b and %f
  { "find", "f(a(b)c)d", "%b()" },
  { "find", "f(a(b)c", "%b()" },
  { "find", "f)a(b", "%b()" },
  { "match", "x[[y]]z", "%b[]" },
  { "match", "xaaay", "%baa" },
  { "match", "xabcay", "%baa" },
  { "match", "if (a and (b or c)) then", "if (%b()) then" },
  { "gmatch", "(a)(b)((c))", "%b()" },
  { "gmatch", "{}{}{", "%b{}" },
  { "gsub", "THE (quick) fox", "%f[%a]%a+", "W" },
  { "gsub", "THE (quick) fox", "%f[%A]", "|" },
  { "gsub", "hello world", "%f[%w]", "<" },
  { "gsub", "hello world", "%f[%W]", ">" },
  { "gsub", "hello", "%f[%z]", "$" },
  { "gsub", "hello", "%f[^%z]", "^" },
  { "gsub", "a1b2", "%f[%d]", "#" },
  { "gsub", "aXbX", "%f[X]X", "y" },
  { "find", "abc", "%f[a]" },
  { "find", "abc", "%f[a]", 2 },
  { "find", "", "%f[%z]" },
  { "find", "", "%f[^%z]" },
  { "find", "a]", "%f[]]" },
  -- empty matches in gmatch and gsub
  { "gsub", "abc", "", "-" },
  { "gsub", "", "", "-" },
  { "gsub", "abc", "%w*", "-" },
  { "gsub", "abc d", "%w*", "-" },
  { "gsub", "hello world", "o*", "X" },
  { "gsub", "abc", "b*", "-" },
  { "gsub", "abc", ".-", "-" },
  { "gsub", "a,b,,c", "[^,]*", "<%0>" },
  { "gmatch", "abc", "" },
  { "gmatch", "abc", "()" },
  { "gmatch", "abc", "%w*" },
  { "gmatch", "a,b,,c", "([^,]*)" },
  { "gmatch", "a,b,,c,", "([^,]*)" },
  { "gmatch", "hello world from Lua", "%a+" },
  { "gmatch", "k1=v1, k2=v2", "(%w+)=(%w+)" },
  { "gmatch", "abc", "." },
  { "gmatch", "", "" },
  { "gmatch", "", "x" },
  { "gmatch", "abc", "b*" },
  -- gmatch init (new in 5.4)
  { "gmatch", "abcabc", "a", 2 },
  { "gmatch", "abcabc", "a", -3 },
  { "gmatch", "abcabc", "a", -100 },
  { "gmatch", "abcabc", "", 6 },
  { "gmatch", "abcabc", "", 7 },
  { "gmatch", "abcabc", "", 8 },
  { "gmatch", "abcabc", "", math.maxinteger },
  { "gmatch", "abcabc", "()", 0 },
  -- gsub replacements: tables, functions, n
  { "gsub", "hello world", "%w+", lookup },
  { "gsub", "hello world", "(%w+)", lookup },
  { "gsub", "x a y", "%w", lookup },
  { "gsub", "hello world", "%w+", upper },
  { "gsub", "hello world", "%w+", keep },
  { "gsub", "hello world", "()(%w+)", pos_and_text },
  { "gsub", "hello world", "(h)(e)", pos_and_text },
  { "gsub", "abc", "%w", function(c) return c:byte() end },
  { "gsub", "abc", "%w", function() return false end },
  { "gsub", "abc", "%w", function() return {} end },
  { "gsub", "abc", "%w", { a = {} } },
  { "gsub", "abc", "%w", { a = true } },
  { "gsub", "abc", "%w", "x", 0 },
  { "gsub", "abc", "%w", "x", -1 },
  { "gsub", "abc", "%w", "x", 2 },
  { "gsub", "abc", "%w", "x", 2.0 },
  { "gsub", "abc", "%w", "x", 1.5 },
  { "gsub", "abc", "%w", "x", "2" },
  { "gsub", "abc", "%w", "x", math.maxinteger },
  { "gsub", "abc", "%w", "x", math.mininteger },
  { "gsub", "abc", "", "x", 2 },
  { "gsub", "abc", "b", 7 },
  { "gsub", "abc", "b", 1.5 },
  { "gsub", 123, 2, 9 },
  { "gsub", "abc", "%w", "%" },
  { "gsub", "abc", "%w", "%x" },
  { "gsub", "abc", "%w", "%2" },
  { "gsub", "abc", "(%w)", "%2" },
  { "gsub", "abc", "(%w)", "%1%9" },
  { "gsub", "abc", "x", "%" }, -- never used: no error
  { "gsub", "abc", "%w" },
  { "gsub", "abc", "%w", true },
  { "gsub", "abc", "%w", nil },
  -- malformed patterns: the error comes when the search reaches it
  { "find", "a", "a%" },
  { "find", "b", "a%" },
  { "find", "a", "%" },
  { "find", "a", "[a" },
  { "find", "a", "[" },
  { "find", "a", "[^" },
  { "find", "a", "[a%" },
  { "find", "a", "[a%]" },
  { "find", "a", "[]" },
  { "find", "a", "%b" },
  { "find", "a", "%ba" },
  { "find", "a", "%f" },
  { "find", "a", "%fa" },
  { "find", "a", "%f[a" },
  { "find", "a", "(" },
  { "find", "a", "(a" },
  { "find", "a", "()(" },
  { "find", "a", ")" },
  { "find", "a", "a)" },
  { "find", "a", "(a))" },
  { "find", "a", "%1" },
  { "find", "a", "%0" },
  { "find", "a", "(a)%2" },
  { "find", "a", "(a%1)" },
  { "find", "a", "x%1" },
  { "find", "a", "x(" },
  { "match", "a", "(a" },
  { "match", "a", "(a)(" },
  { "gmatch", "a", "(a" },
  { "gsub", "a", "(a", "x" },
  { "gsub", "a", "(a", "%1" },
  { "gsub", "abc", "(a", "x" },
  { "find", string.rep("a", 40), string.rep("()", 32) },
  { "find", string.rep("a", 40), string.rep("()", 33) },
  { "find", string.rep("a", 40), string.rep("(a)", 32) },
  { "match", string.rep("a", 40), string.rep("(a)", 33) },
  { "find", string.rep("a", 300), string.rep("a?", 199) },
  { "find", string.rep("a", 300), string.rep("a?", 200) },
  { "find", string.rep("a", 300), string.rep("a*", 199) },
  { "find", string.rep("a", 300), string.rep("a*", 200) },
  { "find", string.rep("a", 300), string.rep("a-", 200) },
  { "find", string.rep("a", 300), string.rep("(a)", 31) .. string.rep("a?", 200) },
  { "find", "b", string.rep("a?", 300) .. "b" },
  -- argument errors
  { "find", nil, "a" },
  { "find", "a", nil },
  { "find", "a", "a", "x" },
  { "find", "a", "a", 1.5 },
  { "find", {}, "a" },
  { "match", "a" },
  { "gmatch", nil, "a" },
  { "gmatch", "a", {} },
  { "gmatch", "a", "a", "x" },
  { "gsub", nil, "a", "b" },
  { "gsub", "a", nil, "b" },
}

describe("pattern conformance with Lua 5.4", function()
  it("gives Lua's results and errors on " .. #cases .. " listed cases", function()
    for _, c in ipairs(cases) do
      same(table.unpack(c, 1, 6))
    end
  end)

  it("gives Lua's results on random patterns and subjects", function()
    -- A fixed seed: the same cases on every run, and a failure names its case.
    math.randomseed(20240506)
    local items = { ".", "a", "b", "%a", "%d", "%W", "%s", "[ab]", "[^a]", "[a-c]", "[%d)]", "%%",
                    "%(", "%b()", "%f[%w]", "%f[^a]", "%1", "()" }
    local quant = { "", "", "", "*", "+", "-", "?" }
    local rare = { "(", ")", "%", "[", "[]", "%b", "$", "^" }
    local chars = { "a", "b", "c", "1", "(", ")", " ", "%", "]", "\0", "\255" }
    local function pattern()
      local parts, open = {}, 0
      if math.random(6) == 1 then parts[1] = "^" end
      for _ = 1, math.random(0, 5) do
        local r = math.random(20)
        if r == 1 then
          parts[#parts + 1] = rare[math.random(#rare)]
        elseif r <= 3 then
          parts[#parts + 1] = "("
          open = open + 1
        elseif r <= 5 and open > 0 then
          parts[#parts + 1] = ")"
          open = open - 1
        else
          local it = items[math.random(#items)]
          if it:sub(1, 2) ~= "%b" and it:sub(1, 2) ~= "%f" and it ~= "%1" and it ~= "()" then
            it = it .. quant[math.random(#quant)]
          end
          parts[#parts + 1] = it
        end
      end
      if math.random(3) > 1 then parts[#parts + 1] = string.rep(")", open) end
      if math.random(6) == 1 then parts[#parts + 1] = "$" end
      return table.concat(parts)
    end
    local function subject()
      local t = {}
      for i = 1, math.random(0, 10) do t[i] = chars[math.random(#chars)] end
      return table.concat(t)
    end
    for _ = 1, 4000 do
      local s, p = subject(), pattern()
      local init = math.random(8) == 1 and math.random(-12, 12) or nil
      same("find", s, p, init)
      same("match", s, p, init)
      same("gmatch", s, p, init)
      same("gsub", s, p, "<%0>")
      same("gsub", s, p, pos_and_text)
    end
  end)

  it("keeps the whole match and the captures intact on long subjects", function()
    local s = string.rep("ab", 50000) .. "c"
    same("find", s, "(ab)*c")
    same("find", s, "b(.*)c")
    same("match", s, ".-(c)")
    same("gsub", s, "ab", "x")
    same("gsub", s, "(a)(b)", "%2%1", 1000)
    same("match", s .. s, "(.*)%1")
  end)
end)

describe("the pattern bound", function()
  local too_complex = "pattern too complex: more than " .. STEPS .. " steps"

  it("stops the patterns that froze the host, with a clear error", function()
    local attacks = {
      { P.find, string.rep("a", 100), ".-.-.-.-.-b" },
      { P.find, string.rep("a", 100000), ".-.-.-.-.-b" },
      { P.match, string.rep("a", 100000), "(.-)(.-)(.-)b" },
      { P.find, string.rep("a", 100000), ".*.*.*b" },
      { P.gsub, string.rep("a", 100000), ".-.-b", "" },
      { P.gsub, string.rep("a", 100000), "a-b", "" },
      { P.find, string.rep("(", 100000), "%b()" },
      { P.find, string.rep("a", 100000), string.rep("a?", 100) .. "b" },
      { P.find, string.rep("a", 20000), "(a*)%1%1b" },
      -- 16 sets become maps; a 17th in a taken slot is scanned on every test
      { P.find, string.rep("x", 100000),
        string.rep("[" .. string.rep("a", 500) .. "]?", 16) .. "[" .. string.rep("a", 5000) .. "]" },
    }
    for i, a in ipairs(attacks) do
      local ok, err = pcall(a[1], a[2], a[3], a[4])
      assert.is_false(ok, "attack " .. i .. " returned")
      assert.equal(too_complex, err, "attack " .. i)
    end
    local ok, err = pcall(function()
      for _ in P.gmatch(string.rep("a", 100000), ".-.-.-b") do end
    end)
    assert.is_false(ok)
    assert.equal(too_complex, err:sub(-#too_complex)) -- after "file:line: ", as Lua's errors
  end)

  it("answers an ordinary call on a long subject within the bound", function()
    local s = string.rep("word ", 200000) -- 1 MB
    local n = select(2, P.gsub(s, "%a+", "x"))
    assert.equal(200000, n)
    local count = 0
    for _ in P.gmatch(s, "%S+") do count = count + 1 end
    assert.equal(200000, count)
    assert.equal(1000000, select(2, P.find(s, "^.*$")))
  end)

  it("bounds nesting without recursion: deep patterns fail like Lua's", function()
    for _, p in ipairs({ string.rep("(", 100000), string.rep("a?", 100000), string.rep("a*", 100000),
                         string.rep("()", 100000), string.rep("%f[a]", 100000) }) do
      local want = { pcall(string.find, string.rep("a", 1000), p) }
      local got = { pcall(P.find, string.rep("a", 1000), p) }
      assert.same(want, got)
    end
  end)
end)

describe("patterns in a sandboxed handler", function()
  local a, b, ka, rt, dir
  before_each(function()
    a, b, ka = N.pair()
    dir = H.tmpdir()
    rt = assert(peernet.runtime.new(a, { log = function(level, msg) N.logs[#N.logs + 1] = level .. " " .. msg end }))
  end)
  after_each(function()
    rt:close()
    N.close(a, b)
    H.rmdir(dir)
  end)

  it("ends a runaway pattern with handler_crash while another script keeps answering", function()
    H.write_file(dir .. "/bad.lua", [[
      local long = string.rep("a", 100000)
      peernet.expose("find100", function() return string.find(string.rep("a", 100), ".-.-.-.-.-b") end)
      peernet.expose("find100k", function() return string.find(long, ".-.-.-.-.-b") end)
      peernet.expose("method", function() return long:find(".-.-.-.-.-b") end)
      peernet.expose("match", function() return long:match("(.-)(.-)(.-)b") end)
      peernet.expose("gsub", function() return (long:gsub(".-.-b", "")) end)
      peernet.expose("gmatch", function() for _ in long:gmatch(".-.-.-b") do end return "done" end)
      peernet.expose("caught", function()
        local ok, err = pcall(string.find, long, ".-.-.-.-.-b")
        return { ok, err }
      end)
      peernet.expose("fine", function()
        local k, v = ("key=value"):match("(%w+)=(%w+)")
        return { k, v, (("a,b,c"):gsub(",", ";")), getmetatable("") }
      end)
    ]])
    H.write_file(dir .. "/good.lua", [[peernet.expose("ping", function() return "pong" end)]])
    rt:load_dir(dir)
    local akey = ka:public_hex()
    for _, name in ipairs({ "find100", "find100k", "method", "match", "gsub", "gmatch" }) do
      -- the attack and a call to another script, in flight together
      local res, pong
      assert(b:call(akey, name, {}, function(...) res = table.pack(...) end, { timeout = 30000 }))
      assert(b:call(akey, "ping", {}, function(...) pong = table.pack(...) end))
      assert.is_true(N.wait(function() return res and pong end, 60000), name)
      assert.is_falsy(res[1], name)
      assert.equal("handler_crash", res[2], name)
      assert.same({ true, "pong" }, { pong[1], pong[2] }, name)
    end
    local found
    for _, l in ipairs(N.logs) do
      if l:find("pattern too complex: more than " .. STEPS .. " steps", 1, true) then found = true end
    end
    assert.is_true(found)
    assert.same({ true, { false, "pattern too complex: more than " .. STEPS .. " steps" } },
      { N.call(b, akey, "caught", {}) })
    assert.same({ true, { "key", "value", "a;b;c", false } }, { N.call(b, akey, "fine", {}) })
  end)

  it("ends a loop of caught heavy patterns by the time slice", function()
    -- Each call stays under the step bound (300^3/6 steps), so no error
    -- stops the loop: only the sandbox's clock can. (How soon after the
    -- slice it stops is the pattern binding's hook nudge; that is a time
    -- and not asserted here.)
    H.write_file(dir .. "/loop.lua", [[
      local long = string.rep("a", 300)
      peernet.expose("loop", function()
        while true do pcall(string.find, long, ".-.-.-b") end
      end)
    ]])
    rt:load_dir(dir)
    local ok, err = N.call(b, ka:public_hex(), "loop", {}, { timeout = 60000 })
    assert.is_falsy(ok)
    assert.equal("handler_crash", err)
    local sliced
    for _, l in ipairs(N.logs) do
      if l:find("CPU slice exceeded", 1, true) then sliced = true end
    end
    assert.is_true(sliced)
  end)
end)
