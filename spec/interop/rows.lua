-- The value table of the interop specs (spec/interop/values_spec.lua) and
-- of bench/interop_measure.lua: Elixir terms a PeerNet caller sends to a Lua
-- echo handler, and what must come back (docs/values.md).
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
  { "a keyword list (its atoms map to binaries)", '[a: 1, b: "x"]', '[{"a", 1}, {"b", "x"}]' },
  { "a struct (a map: its keys and module name map to binaries)", 'Version.parse!("1.2.3")',
    '%{"__struct__" => "Elixir.Version", "major" => 1, "minor" => 2, "patch" => 3, "pre" => [], '
    .. '"build" => nil}' },
  { "a charlist", "'abc'" },
  { "a 100 KiB binary", ":binary.copy(<<7, 0, 255>>, 34_134)" },
  { "a 5,000-element list", "Enum.to_list(1..5000)" },
  { "a 5,000-element list of binaries", 'for i <- 1..5000, do: "item#{i}"' },
}

return { rows = ROWS }
