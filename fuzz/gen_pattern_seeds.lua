-- Writes fuzz/corpus/pattern/: patterns of every kind, malformed ones and
-- the runaway ones of issue 11, each with a subject. Input layout in
-- fuzz/fuzz_pattern.c: mode byte, pattern length byte, pattern, subject.
-- Run from the repository root: lua5.4 fuzz/gen_pattern_seeds.lua
local dir = "fuzz/corpus/pattern"
os.execute("mkdir -p " .. dir)
local n = 0
local function put(mode, pat, subject)
  assert(#pat <= 255)
  n = n + 1
  local o = assert(io.open(string.format("%s/seed_%03d", dir, n), "wb"))
  o:write(string.char(mode, #pat), pat, subject)
  o:close()
end
local text = "Hello, World! key=value (a(b)c) [x] 0x1F \0\255 end"
local patterns = {
  "o", "o w", "%a+", "%A", "%c%d%g%l%p%s%u%w%x%z", "%C%D%G%L%P%S%U%W%X%Z", "%.", "%%",
  "[]]", "[^]]", "[%]]", "[a-]", "[-a]", "[a-c%d]", "[^%s]+", "[\128-\255]", "[\0-\31]",
  "a*", "a+", "a-", "a?", ".-", "(.-)%s", "^%s*(.-)%s*$", "^H", "d$", "$", "^$", "a$b",
  "(o)(r)", "()ll()", "((l)(l))", "(%w+)=(%w+)", "(l)%1", "(a)%2", "()%1", "%bxy", "%b()",
  "%f[%w]%w+", "%f[%W]", "%f[%z]", "%f[^%z]", "(", ")", "%", "[", "[^", "[a%", "%b", "%ba",
  "%f", "%fa", "%f[a", "(a", "%0", ("()"):rep(33), ("(a)"):rep(32), ("a?"):rep(120),
  ("a*"):rep(100), ".-.-.-.-.-b", ".*.*.*b", "(.-)(.-)(.-)b", "((a-)(a-))-b", "(a*)%1%1b",
  "[" .. ("a"):rep(200) .. "]", "[%w_]-[%w_]-[%w_]-b",
}
for i, p in ipairs(patterns) do put(i % 16, p, text) end
put(0, ".-.-.-.-.-b", ("a"):rep(100))
put(0, ".-.-.-.-.-b", ("a"):rep(20000))
put(0, "%b()", ("("):rep(20000))
put(0, ("a?"):rep(100) .. "b", ("a"):rep(2000))
put(1, "(a*)%1%1b", ("a"):rep(5000))
put(0, "[" .. ("a"):rep(250) .. "]", ("x"):rep(20000))
put(0, "", "")
put(6, "", "abc")
put(14, "c", "abc")
print("wrote " .. n .. " seeds to " .. dir)
