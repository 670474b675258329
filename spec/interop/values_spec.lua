-- Elixir -> Lua handler round trips against the real PeerNet library: a
-- PeerNet instance on a real Elixir node calls the handlers of
-- spec/interop/handlers/ in a real `peernet-host serve`, and compares what
-- comes back exactly (same term and same external format, so -0.0 is not
-- 0.0). Each row either comes back equal, or mapped as docs/values.md says
-- (the row names the Elixir term it must come back as). Every row also
-- checks that the link it used is still the same connection afterwards.
local E = require "support.elixir"
local I = require "support.interop"

local node, h, ekey

setup(function()
  node = E.start()
  h = I.host()
  ekey = I.elixir(node, "n")
  I.trust(h, ekey, "--label", "phone")
  I.serve(h, E.free_port())
  I.elixir_dials(node, "n", h)
  assert(I.wait_linked(node, "n", h.key), "the reference never connected")
end)

teardown(function()
  if node then node:close() end
  I.cleanup()
end)

-- The connection the reference uses now (waiting for one if a previous row
-- cost the link: the reference redials, and one row's failure must not
-- fail the next).
local function link()
  assert(I.wait_linked(node, "n", h.key), "no link to the host")
  return node:evalf('inspect(PNI.conn_pid(:n, "%s"))', h.key)
end

local function call(handle, expr)
  return node:evalf('PeerNet.call(:n, %s, :%s, %s, 10_000)', E.key(h.key), handle, expr)
end

-- An Elixir snippet comparing the echo of expr with want exactly.
local function roundtrip(expr, want)
  return node:evalf([[
    v = (%s)
    want = (%s)
    case PeerNet.call(:n, %s, :echo, v, 10_000) do
      {:ok, got} ->
        if PNI.same?(got, want), do: "equal", else: "came back as " <> inspect(got, limit: 20)
      other -> "failed: " <> inspect(other)
    end]], expr, want or "v", E.key(h.key))
end

local NEG_ZERO = ":erlang.binary_to_term(<<131, 70, 128, 0, 0, 0, 0, 0, 0, 0>>)"

-- { label, Elixir expression, nil (comes back equal) or the mapped term }
local ROWS = {
  { "0", "0" },
  { "-1", "-1" },
  { "2^31", "2 ** 31" },
  { "-2^31", "-(2 ** 31)" },
  { "2^63-1", "9_223_372_036_854_775_807" },
  { "-2^63", "-9_223_372_036_854_775_808" },
  { "2^63", "9_223_372_036_854_775_808" },
  { "2^64-1", "18_446_744_073_709_551_615" },
  { "2^64", "18_446_744_073_709_551_616" },
  { "2^70", "1_180_591_620_717_411_303_424" },
  { "-(2^64)", "-18_446_744_073_709_551_616" },
  { "1.5", "1.5" },
  { "1.0 (stays a float)", "1.0" },
  { "0.0", "0.0" },
  { "-0.0", NEG_ZERO },
  { "the largest double", "1.7976931348623157e308" },
  { "the most negative double", "-1.7976931348623157e308" },
  { "the smallest subnormal", "5.0e-324" },
  { "the smallest normal", "2.2250738585072014e-308" },
  { "true", "true" },
  { "false", "false" },
  { "nil", "nil" },
  { "a UTF-8 binary", '"héllo ✓"' },
  { "a binary that is not UTF-8", "<<255, 254, 0, 128>>" },
  { "an empty binary", '""' },
  { "an atom (arrives as a string: a binary)", ":ok", '"ok"' },
  { "another atom", ":hello_world", '"hello_world"' },
  { "[]", "[]" },
  { "nested lists", '[1, [2, [3, []]], "x"]' },
  { "a list holding nil", "[nil, 1, nil]" },
  { "{}", "{}" },
  { "a tuple", '{1, 2.5, "x"}' },
  { "a tuple holding an atom (the atom maps to a binary)", "{:ok, 1}", '{"ok", 1}' },
  { "a map with binary keys", '%{"k" => 1, "n" => [1, 2], "m" => %{"x" => nil}}' },
  { "a map with atom keys (the keys map to binaries)", '%{a: 1, b: "x"}',
    '%{"a" => 1, "b" => "x"}' },
  { "a map with integer keys", '%{1 => "one", 2 => "two"}' },
  { "%{}", "%{}" },
  { "a charlist", "'abc'" },
  { "a 100 KiB binary", ":binary.copy(<<7, 0, 255>>, 34_134)" },
  { "a 5,000-element list", "Enum.to_list(1..5000)" },
  { "a 5,000-element list of binaries", 'for i <- 1..5000, do: "item#{i}"' },
}

describe("Elixir -> Lua echo, compared exactly", function()
  for _, row in ipairs(ROWS) do
    local label, expr, want = row[1], row[2], row[3]
    it(label .. (want and (" maps to " .. want) or " comes back equal"), function()
      local before = link()
      assert.are.equal("equal", roundtrip(expr, want))
      assert.are.equal(before, link(), "the link changed")
    end)
  end
end)

describe("integers outside int64 reach a handler exactly", function()
  for _, v in ipairs { "9223372036854775808", "18446744073709551615", "18446744073709551616",
                       "1180591620717411303424", "-18446744073709551616", "-9223372036854775809" } do
    it(v .. " is not a float in Lua", function()
      local before = link()
      local got = call("kind", v)
      assert.are_not.matches('"float"', got)
      assert.matches('"' .. v .. '"}}$', got)
      assert.are.equal(before, link(), "the link changed")
    end)
  end
end)

describe("errors as the reference sees them; the link survives each", function()
  local CASES = {
    { "a raised error answers the bare atom handler_crash", "raise", "{:error, :handler_crash}" },
    { "nil, reason answers {:error, reason}", "fail", '{:error, "no such room"}' },
    { "nil, atom answers {:error, atom}", "fail_atom", "{:error, :badarg}" },
    { "a name nobody exposed answers no_such_handle", "nobody_here", "{:error, :no_such_handle}" },
    { "a refusing predicate answers forbidden", "guarded", "{:error, :forbidden}" },
    { "a handler past its CPU budget answers handler_crash", "spin", "{:error, :handler_crash}" },
  }
  for _, c in ipairs(CASES) do
    it(c[1], function()
      local before = link()
      assert.are.equal(c[3], call(c[2], "[1, 2]"))
      assert.are.equal("{:ok, 42}", call("echo", "42"))
      assert.are.equal(before, link(), "the link changed")
    end)
  end
end)
