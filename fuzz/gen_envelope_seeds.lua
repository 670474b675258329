-- Writes fuzz/corpus/envelope/: the plaintexts of the recorded transcript,
-- the env_* ETF vectors in both OTP 25 and OTP 26 forms, and a few near
-- misses. Run from the repository root: lua5.4 fuzz/gen_envelope_seeds.lua
local json = require "dkjson"
local function load(name)
  local f = assert(io.open("../shared/vectors/" .. name, "rb"))
  local v = assert(json.decode(f:read("a")))
  f:close()
  return v
end
local function unhex(s) return (s:gsub("..", function(b) return string.char(tonumber(b, 16)) end)) end
local dir = "fuzz/corpus/envelope"
os.execute("mkdir -p " .. dir)
local n = 0
local function put(name, bytes)
  local o = assert(io.open(dir .. "/" .. name, "wb"))
  o:write(bytes)
  o:close()
  n = n + 1
end

for i, fr in ipairs(load("peernet_wire_v1.json").transport_frames) do
  put(string.format("transcript_%d", i), unhex(fr.plaintext_etf_hex))
end
for _, e in ipairs(load("etf_vectors.json").valid) do
  if e.name:match("^env_") then
    put(e.name .. "_otp25", unhex(e.hex))
    if e.hex_minor_version_2 then put(e.name .. "_otp26", unhex(e.hex_minor_version_2)) end
  end
end

local V, NONCE = "\131", "m\0\0\0\16" .. ("\0"):rep(16)
put("near_id_0", V .. "h\4w\4calla\0w\4echoj")
put("near_id_neg_big", V .. "h\4w\4calln\1\1\5w\4echoj")
put("ok_latin1_name", V .. "h\4d\0\4calla\1d\0\2h\233j")
put("near_nonce_15", V .. "h\2w\4pingm\0\0\0\15" .. ("\0"):rep(15))
put("near_reply_maybe", V .. "h\3w\5replya\1h\2w\5maybea\0")
put("near_trailing", V .. "h\2w\4pong" .. NONCE .. "\0")
put("near_large_tuple", V .. "i\0\0\0\2w\4pong" .. NONCE)
put("near_deep_args", V .. "h\3w\4sendw\1x" .. ("h\1"):rep(63) .. "j")
put("near_too_deep_args", V .. "h\3w\4sendw\1x" .. ("h\1"):rep(64) .. "j")
-- Args, Value and Reason outside the subset: envelopes flagged foreign
local PID = unhex("5864000d6e6f6e6f6465406e6f686f7374000000600000000000000000")
put("foreign_call_pid", V .. "h\4w\4calla\7w\4echo" .. PID)
put("foreign_send_improper", V .. "h\3w\4sendw\4chatl\0\0\0\1a\1a\2")
put("foreign_reply_ok_ref", V .. "h\3w\5replya\1h\2w\2ok" .. unhex("5a000364000d6e6f6e6f6465406e6f686f7374000000000001ce7100dc0001802638b5"))
put("foreign_reply_error_exit", V .. "h\3w\5replya\1h\2w\5errorh\2w\7timeoutl\0\0\0\1" .. PID .. "j")
put("foreign_call_fun", V .. "h\4w\4calla\7w\4echo" .. unhex("7164000b456c697869722e456e756d6400036d61706102"))
put("big_call_2p70", V .. "h\4w\4calln\8\0" .. ("\255"):rep(8) .. "w\4echon\9\0" .. ("\0"):rep(8) .. "\64")
put("near_id_2p70", V .. "h\4w\4calln\9\0" .. ("\0"):rep(8) .. "\64w\4echoj")
put("near_call_compressed_args", V .. "h\4w\4calla\7w\4echoP\0\0\0\1x")
print("wrote " .. n .. " seeds")
