-- Writes fuzz/corpus/etf/: every vector of etf_vectors.json plus hand-made
-- nasty inputs. Run from the repository root: lua5.4 fuzz/gen_etf_seeds.lua
local json = require "dkjson"
local f = assert(io.open("../shared/vectors/etf_vectors.json", "rb"))
local v = assert(json.decode(f:read("a")))
f:close()
local dir = "fuzz/corpus/etf"
os.execute("mkdir -p " .. dir)
local function unhex(s) return (s:gsub("..", function(b) return string.char(tonumber(b, 16)) end)) end
local n = 0
local function put(name, bytes)
  local o = assert(io.open(dir .. "/" .. name, "wb"))
  o:write(bytes)
  o:close()
  n = n + 1
end
for _, e in ipairs(v.valid) do
  put("valid_" .. e.name, unhex(e.hex))
end
for _, e in ipairs(v.must_reject) do put("reject_" .. e.name, unhex(e.hex)) end
local function lists(d, leaf) return "\131" .. ("l\0\0\0\1"):rep(d) .. leaf .. ("j"):rep(d) end
put("nasty_lists_64", lists(64, "a\1"))
put("nasty_lists_65", lists(65, "a\1"))
put("nasty_lists_800", lists(800, "a\1"))
put("nasty_tuples_64", "\131" .. ("h\1"):rep(64) .. "a\1")
put("nasty_maps_64", "\131" .. ("t\0\0\0\1a\1"):rep(64) .. "j")
put("nasty_map_key_maps", "\131t\0\0\0\2t\0\0\0\1w\1aa\9a\1t\0\0\0\1w\1ba\0a\2")
put("nasty_huge_binary", "\131m\255\255\255\255xx")
put("nasty_huge_string", "\131k\255\255xx")
put("nasty_huge_tuple_nested", "\131h\2i\127\255\255\255a\1a\1")
put("nasty_big_9_bytes", "\131n\9\0" .. ("\255"):rep(9))
put("nasty_big_nonminimal", "\131n\8\0\1\0\0\0\0\0\0\0")
put("nasty_big_zero", "\131n\0\1")
put("nasty_float_nan", "\131F\127\248\0\0\0\0\0\0")
put("nasty_float_negzero", "\131F\128\0\0\0\0\0\0\0")
put("nasty_atom_latin1_255", "\131d\0\255" .. ("\233"):rep(255))
put("nasty_atom_utf8_255_wide", "\131v\3\252" .. ("\240\159\152\128"):rep(255))
put("nasty_atom_bad_utf8", "\131w\2\192\128")
put("nasty_improper_nested", "\131h\1l\0\0\0\1a\1a\2")
put("nasty_empty_list_ext", "\131l\0\0\0\0j")
put("nasty_string_vs_list", "\131l\0\0\0\2k\0\2\1\2l\0\0\0\2a\1a\2jj")
put("nasty_mixed_order", "\131l\0\0\0\6a\1F\63\240\0\0\0\0\0\0w\1ah\0t\0\0\0\0m\0\0\0\0j")
put("nasty_dup_keys", "\131t\0\0\0\2a\1a\1a\1a\2")
put("nasty_trailing_tail", "\131l\0\0\0\1a\1jj")
print("wrote " .. n .. " seeds")
