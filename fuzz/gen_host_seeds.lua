-- Writes fuzz/corpus/host/, the seeds of fuzz/fuzz_host.c (input format in
-- that file's header comment). Run from the repository root:
--     lua5.4 fuzz/gen_host_seeds.lua [vectors-dir]
-- Mode A seeds are wire bytes from vectors/peernet_wire_v1.json (the host
-- and the harness use that transcript's keys); modes B and C are chunks the
-- harness seals after its own handshake.
local json = require "dkjson"

local dir = arg[1] or os.getenv("PN_VECTORS") or "../shared/vectors"
local f = assert(io.open(dir .. "/peernet_wire_v1.json", "rb"))
local w = assert(json.decode(f:read("a")))
f:close()

local function unhex(s) return (s:gsub("..", function(b) return string.char(tonumber(b, 16)) end)) end
local function frame(body) return string.pack(">s4", body) end
local function body(hex) return (string.unpack(">s4", unhex(hex))) end
local function flip(s, pos) return s:sub(1, pos - 1) .. string.char(s:byte(pos) ~ 1) .. s:sub(pos + 1) end

local HS, T = w.handshake, w.transport_frames
local M1, M3 = unhex(HS.m1.wire_hex), unhex(HS.m3.wire_hex)
local sent = {}
for _, t in ipairs(T) do
  if t.direction == "initiator_to_responder" then sent[#sent + 1] = unhex(t.wire_hex) end
end
local transcript = M1 .. M3 .. table.concat(sent)

-- ETF, version byte only where a whole envelope starts.
local V = "\131"
local function atom(s) return "w" .. string.char(#s) .. s end
local function int(n) return "a" .. string.char(n) end
local function bin(s) return string.pack(">c1s4", "m", s) end
local function tuple(...) local t = { ... } return "h" .. string.char(#t) .. table.concat(t) end
local function call(id, name, args) return V .. tuple(atom "call", int(id), atom(name), args) end
local function send(name, args) return V .. tuple(atom "send", atom(name), args) end
local NONCE = ("\7"):rep(16)

-- Mode byte, flags, chunk control bits and chunk types of fuzz_host.c.
local A, B, C = 0, 1, 2
local LEGACY, STRANGER, SECOND, CLOSE_LIVE, HELD_ERROR, TIGHT, EVENTS = 0x04, 0x08, 0x08, 0x10, 0x20, 0x40, 0x80
local RAW, PUMP, ANSWER_OK, ANSWER_ERR, CORRUPT = 0x01, 0x02, 0x04, 0x08, 0x10
local T_CALL, T_SEND, T_PING, T_PONG, T_REPLY, T_SEALED, T_ACTION, T_WIRE = 0, 1, 2, 3, 4, 5, 6, 7
local NAMES = { echo = 0, hold = 1, fail = 2, secret = 3, big = 4, call_back = 5, send_back = 6,
  ping_me = 7, untrust = 8, revoke = 9, info = 10, error_term = 11, expose = 12, late = 13,
  nope = 14, close_host = 15, gate_untrust = 16, gate_revoke = 17, gate_close = 18 }

local function chunk(ctl, bytes) return string.pack(">Bs2", ctl, bytes) end
local function mode(m, ...) return string.char(m) .. table.concat({ ... }) end
-- Mode C: a call or send of handle `name` (an index into fuzz_host.c's
-- names) with id byte `id` and Args bytes (wrapped as a binary unless a term).
local function ccall(name, args, id, ctl)
  return chunk((ctl or PUMP) | T_CALL << 5, string.char(id or 1, NAMES[name]) .. (args or ""))
end
local function csend(name, args) return chunk(PUMP | T_SEND << 5, string.char(0, NAMES[name]) .. (args or "")) end
local function caction(sel, name, rest)
  return chunk(PUMP | T_ACTION << 5, string.char(sel, NAMES[name or "echo"]) .. (rest or ""))
end

local seeds = {
  -- A: raw wire bytes (byte 1: write size)
  a_transcript = mode(A, "\0", transcript),
  a_transcript_bytewise = mode(A, "\1", transcript),
  a_transcript_split7 = mode(A, "\7", transcript),
  a_transcript_legacy_host = mode(A | LEGACY, "\0", transcript),
  a_transcript_close_live = mode(A | CLOSE_LIVE, "\0", transcript),
  a_mode3_m1_only = mode(3, "\0", M1),
  a_idle_evicted = mode(A | SECOND, "\0", transcript),
  a_idle_evicted_bytewise = mode(A | SECOND, "\1", transcript),
  a_idle_evicted_garbage = mode(A | SECOND, "\0", frame(("\0"):rep(38))),
  a_m1_bad_header = mode(A, "\0", frame("\131m\0\0\0\31" .. M1:sub(11)) .. M3),
  a_m1_then_bytes = mode(A, "\0", M1 .. "\0\0\0\4junk"),
  a_m1_split3 = mode(A, "\3", transcript),
  a_transcript_events = mode(A | EVENTS, "\0", transcript),
  a_m1_twice = mode(A, "\0", M1 .. M1),
  a_m3_bad_tag = mode(A, "\0", M1 .. frame(flip(body(HS.m3.wire_hex), 70))),
  a_replayed_frame = mode(A, "\0", M1 .. M3 .. sent[1] .. sent[1]),
  a_over_cap = mode(A, "\0", "\255\255\255\255"),
  a_handshake_too_big = mode(A, "\0", frame(("\0"):rep(200))),
  a_empty_frames = mode(A, "\0", ("\0\0\0\0"):rep(3) .. M1),
  a_partial_header = mode(A, "\0", M1 .. M3 .. "\0\0"),
  a_partial_body = mode(A, "\0", M1 .. M3 .. sent[1]:sub(1, 20)),
  a_low_order_e = mode(A, "\0", frame("\131m\0\0\0\32" .. ("\0"):rep(32))),

  -- B: sealed plaintexts (ctl bit 0: raw wire bytes instead)
  b_transcript = mode(B, chunk(PUMP, call(1, "echo", atom "hi")), chunk(PUMP, send("chat", atom "yo"))),
  b_batched = mode(B, chunk(0, call(1, "echo", int(1))), chunk(0, call(2, "echo", int(2))),
    chunk(0, send("echo", int(3))), chunk(PUMP, V .. tuple(atom "ping", bin(NONCE)))),
  b_refusals = mode(B, chunk(PUMP, call(1, "secret", int(0))), chunk(PUMP, call(2, "nope", int(0))),
    chunk(PUMP, call(3, "fail", int(0))), chunk(PUMP, call(4, "big", int(0))),
    chunk(PUMP, V .. tuple(atom "reply", int(9), tuple(atom "ok", int(1)))),
    chunk(PUMP, V .. tuple(atom "pong", bin(NONCE)))),
  b_overloaded = mode(B, (chunk(0, call(5, "hold", int(0)))):rep(9), chunk(PUMP | ANSWER_OK, "")),
  b_not_an_envelope = mode(B, chunk(PUMP, V .. tuple(atom "call", int(0), atom "echo", int(0)))),
  b_not_etf = mode(B, chunk(PUMP, "hello")),
  b_empty_plaintext = mode(B, chunk(PUMP, "")),
  b_raw_garbage = mode(B, chunk(PUMP, call(1, "echo", int(1))), chunk(RAW | PUMP, frame(("\1"):rep(40)))),
  b_raw_partial = mode(B, chunk(RAW | PUMP, "\0\0\16")),
  b_corrupt_tag = mode(B, chunk(CORRUPT | PUMP, call(1, "echo", int(1)))),
  b_over_cap = mode(B, chunk(PUMP, call(1, "echo", bin(("x"):rep(5000))))),
  b_stranger = mode(B | STRANGER, chunk(PUMP, call(1, "echo", int(1)))),
  b_legacy_host = mode(B | LEGACY, chunk(PUMP, call(1, "echo", int(1))), chunk(PUMP, call(2, "nope", int(1)))),
  -- Args outside the subset: {error, badarg} or dropped, the link stays
  b_foreign_args = mode(B, chunk(PUMP, call(1, "echo", "X" .. atom "n@h" .. ("\0"):rep(12))),
    chunk(PUMP, send("echo", "l\0\0\0\1" .. int(1) .. int(2))),
    chunk(PUMP, call(2, "nope", "qw\1mw\1fa\1")), chunk(PUMP, call(3, "echo", int(3)))),
  b_big_args = mode(B, chunk(PUMP, call(1, "echo", "n\9\0" .. ("\0"):rep(8) .. "\64")),
    chunk(PUMP, call(2, "echo", "o\0\0\1\1\1" .. ("\7"):rep(257)))),

  -- C: chunks built into valid envelopes
  c_every_handle = (function()
    local t = {}
    local order = { "echo", "hold", "fail", "secret", "big", "call_back", "send_back", "ping_me",
      "info", "error_term", "expose", "late", "nope", "revoke", "revoke" }
    for i, n in ipairs(order) do t[#t + 1] = ccall(n, "arg" .. i, i) end
    return mode(C, table.concat(t), chunk(PUMP | ANSWER_OK, ""))
  end)(),
  c_every_send = (function()
    local t = {}
    for _, n in ipairs { "echo", "hold", "fail", "big", "call_back", "send_back", "ping_me", "info" } do
      t[#t + 1] = csend(n, "s")
    end
    return mode(C, table.concat(t))
  end)(),
  c_untrust = mode(C, ccall("echo", "a"), ccall("untrust", "b"), ccall("echo", "c")),
  c_hold_then_answer = mode(C, ccall("hold", "1", 1), ccall("hold", "2", 2), ccall("hold", "3", 3),
    chunk(PUMP | ANSWER_ERR, ""), ccall("hold", "4", 4), ccall("hold", "5", 5)),
  c_hold_left_error = mode(C | HELD_ERROR, ccall("hold", "1", 1), ccall("hold", "2", 2)),
  c_hold_close_live = mode(C | CLOSE_LIVE, ccall("hold", "1", 1), ccall("hold", "2", 2)),
  c_call_back_reply = mode(C, ccall("call_back", "q"), chunk(PUMP | T_REPLY << 5, "\3\0" .. "ok"),
    ccall("call_back", "q2"), chunk(PUMP | T_REPLY << 5, "\2\0" .. "err")),
  c_call_back_unknown = mode(C, ccall("call_back", "q"), chunk(PUMP | T_REPLY << 5, "\1\5" .. "late")),
  c_ping_pong = mode(C, ccall("ping_me"), chunk(PUMP | T_PONG << 5, "\1"),
    chunk(PUMP | T_PING << 5, NONCE), chunk(PUMP | T_PONG << 5, "\0" .. NONCE)),
  c_pings_unanswered = mode(C, ccall("ping_me"), ccall("ping_me"), ccall("ping_me"), ccall("ping_me"),
    ccall("ping_me")),
  c_actions = mode(C, caction(0, nil, NONCE), caction(1, "echo", "x"), caction(1, "nope", "y"),
    caction(2, "echo", "z"), caction(7), caction(3, "echo"), ccall("echo"), caction(6, nil, "\1"),
    caction(4), caction(7), caction(5), caction(1, "echo", "w")),
  c_calls_from_harness = mode(C, caction(1, "echo", "a"), caction(1, "echo", "b"),
    chunk(PUMP | T_REPLY << 5, "\3\0" .. "ok"), chunk(PUMP | T_REPLY << 5, "\3\1" .. "ok")),
  c_close_host = mode(C, ccall("hold", "h"), ccall("close_host", "x"), ccall("echo", "after")),
  c_close_host_send = mode(C, csend("close_host", "x"), ccall("echo")),
  c_gates = mode(C, ccall("gate_revoke", "r", 1), ccall("gate_revoke", "r", 2), ccall("gate_untrust", "u", 3),
    ccall("echo")),
  c_gate_close = mode(C, ccall("hold"), ccall("gate_close", "c"), ccall("echo")),
  c_legacy_atoms = mode(C | LEGACY, ccall("echo", "a", 1, PUMP | RAW), ccall("nope", "b", 2, PUMP | RAW)),
  c_literal_name = mode(C, chunk(PUMP | T_CALL << 5, "\1" .. string.char(0xc0 | 4) .. "echo" .. "args"),
    chunk(PUMP | T_CALL << 5, "\1" .. string.char(0xc0 | 2) .. "\255\254" .. "args")),
  c_term_args = mode(C, ccall("echo", tuple(atom "ok", int(5))), ccall("error_term", atom "because")),
  c_sealed_and_wire = mode(C, chunk(PUMP | T_SEALED << 5, "junk"), chunk(PUMP | T_WIRE << 5, "\0\0\0\1x")),
  c_corrupt = mode(C, ccall("echo", "a", 1, PUMP | CORRUPT)),
  c_stranger = mode(C | STRANGER, ccall("echo"), caction(1, "echo", "x")),
  c_reconnect = mode(C, ccall("hold", "h"), ccall("call_back", "q"), caction(8),
    ccall("echo", "on the new link"), chunk(PUMP | T_REPLY << 5, "\3\0" .. "late"), ccall("info"),
    caction(8), ccall("hold", "h2")),
  c_short_calls = mode(C, caction(9, "echo", "t1"), chunk(PUMP | T_REPLY << 5, "\3\0" .. "late"),
    caction(9, "nope", "t2")),
  c_tight_outbuf = mode(C | TIGHT, ccall("echo", ("a"):rep(2000), 1, 0), ccall("echo", ("b"):rep(2000), 2, 0),
    ccall("echo", ("c"):rep(2000), 3, PUMP)),
  c_tight_ping = mode(C | TIGHT, ccall("echo", ("a"):rep(3000), 1, 0), chunk(T_PING << 5, NONCE),
    chunk(PUMP | T_PING << 5, NONCE)),
  c_hold_fifo = mode(C, ccall("hold", "1", 1), ccall("hold", "2", 2), ccall("hold", "3", 3),
    ccall("hold", "4", 4), chunk(PUMP | ANSWER_ERR, ""), ccall("hold", "5", 5), ccall("hold", "6", 6),
    chunk(PUMP | ANSWER_OK, "")),
  c_answer_closes_host = mode(C, caction(1, "close_host", "a"), caction(1, "echo", "b"),
    chunk(PUMP | T_REPLY << 5, "\3\1" .. "ok"), ccall("echo")),
  c_answer_untrusts = mode(C, caction(1, "untrust", "a"), caction(1, "echo", "b"),
    chunk(PUMP | T_REPLY << 5, "\2\1" .. "no"), ccall("echo")),
  c_events_reply_hello = mode(C | EVENTS, chunk(PUMP | T_REPLY << 5, "\3\0" .. "hi"),
    chunk(PUMP | T_PONG << 5, "\1"), ccall("echo"), caction(8), ccall("echo")),
  c_events_untrust = mode(C | EVENTS, ccall("hold"), ccall("untrust"), ccall("echo")),
  c_call_too_big = mode(C, caction(1, "echo", ("z"):rep(5000)), caction(2, "echo", ("z"):rep(5000)),
    ccall("echo")),
  -- Sends kept by "hold" (as a script keeps them in its run queue): nine
  -- against a bound of 8 drop one, then across a reconnect and a host close.
  c_hold_sends = mode(C, csend("hold", "1"), csend("hold", "2"), csend("hold", "3"), csend("hold", "4"),
    csend("hold", "5"), csend("hold", "6"), csend("hold", "7"), csend("hold", "8"), csend("hold", "9"),
    chunk(PUMP | ANSWER_OK, ""), csend("hold", "10"), ccall("hold", "c", 1), chunk(PUMP | ANSWER_ERR, "")),
  c_hold_sends_reconnect = mode(C | HELD_ERROR, csend("hold", "1"), csend("hold", "2"), caction(8),
    csend("hold", "3"), ccall("echo", "on the new link")),
  c_hold_sends_close_host = mode(C, csend("hold", "1"), ccall("hold", "c", 1), csend("hold", "2"),
    ccall("close_host", "x")),
}

local out_dir = "fuzz/corpus/host"
os.execute("mkdir -p " .. out_dir)
local n = 0
for name, bytes in pairs(seeds) do
  local o = assert(io.open(out_dir .. "/" .. name, "wb"))
  o:write(bytes)
  o:close()
  n = n + 1
end
print("wrote " .. n .. " seeds to " .. out_dir)
