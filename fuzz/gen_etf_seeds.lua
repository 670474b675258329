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
-- integers of any size up to 4096 bytes, and the terms outside the subset
-- the foreign-term skipper steps over
put("big_2p70", "\131n\9\0" .. ("\0"):rep(8) .. "\64")
put("big_neg_2p64", "\131n\9\1" .. ("\0"):rep(8) .. "\1")
put("big_large_257", "\131o\0\0\1\1\0" .. ("\0"):rep(256) .. "\1")
put("big_large_small_value", "\131o\0\0\0\1\1\5")
put("big_large_max", "\131o\0\0\16\0\0" .. ("\255"):rep(4096))
put("big_large_past_max", "\131o\0\0\16\1\0" .. ("\255"):rep(4097))
put("big_high_zeros", "\131n\20\0" .. ("\0"):rep(8) .. "\64" .. ("\0"):rep(11))
put("big_map_keys", "\131t\0\0\0\2n\9\0" .. ("\0"):rep(8) .. "\64a\1n\9\1" .. ("\0"):rep(8) .. "\64a\2")
local node = "w\3n@h"
put("foreign_old_pid", "\131g" .. node .. ("\0"):rep(9))
put("foreign_new_reference", "\131r\0\2d\0\3n@h\0" .. ("\0"):rep(8))
put("foreign_old_reference", "\131e" .. node .. ("\0"):rep(5))
put("foreign_old_port", "\131f" .. node .. ("\0"):rep(5))
put("foreign_v4_port", "\131x" .. node .. ("\0"):rep(12))
put("foreign_old_fun", "\131u\0\0\0\1g" .. node .. ("\0"):rep(9) .. "w\1ma\1a\2a\3")
put("foreign_float_ext", "\131c" .. ("1.50000000000000000000e+00"):rep(1) .. ("\0"):rep(5))
put("foreign_small_atom", "\131s\2ok")
put("foreign_in_list", "\131l\0\0\0\2a\1X" .. node .. ("\0"):rep(12) .. "j")
put("foreign_export_nested", "\131qw\1mqw\1aw\1ba\1a\2")
put("foreign_fun_size_short", "\131p\0\0\0\5" .. ("\0"):rep(8))
put("foreign_pid_node_not_atom", "\131Xa\1" .. ("\0"):rep(12))
print("wrote " .. n .. " seeds")
