-- peernet.host: real hosts on 127.0.0.1 in one process, on luv's loop.
-- Every exchange goes over real TCP; raw peers (support/net.lua) put exact
-- bytes on the wire where a spec needs a misbehaving or recorded peer.
local peernet = require "peernet"
local N = require "support.net"
local etf, env = peernet.etf, peernet.envelope
local unhex, hex = H.unhex, H.hex

local function stats(h) return h:stats() end

-- h calls key's echo over raw (a raw peer answering the call it reads by
-- echoing its term): the answer h gets.
local function call_over_raw(h, key, raw, value)
  local res
  assert(h:call(key, "echo", value, function(...) res = { ... } end))
  local c = raw:recv_env()
  assert.equal("call", c.kind)
  raw:send_env(env.reply(c.id_str or c.id, true, c.term))
  assert(N.wait(function() return res end))
  return res
end

describe("peernet.host calls", function()
  local a, b, ka, kb
  before_each(function() a, b, ka, kb = N.pair() end)
  after_each(function() N.close(a, b) end)

  it("calls a handler on the peer and gets its value back", function()
    local seen_from
    b:expose("add", function(from, args)
      seen_from = from
      return { sum = args[1] + args[2], tag = peernet.atom("ok") }
    end)
    local ok, v = N.call(a, kb:public_hex(), "add", { 2, 40 })
    assert.is_true(ok)
    assert.equal(42, v.sum)
    assert.equal("ok", v.tag)
    assert.equal(ka:public_hex(), seen_from)
  end)

  it("answers no_such_handle for a name nothing is exposed under, and after revoke", function()
    assert.same({ false, "no_such_handle", "remote" }, { N.call(a, kb:public_hex(), "nothing", 1) })
    b:expose("gone", function() return 1 end)
    assert.same({ true, 1 }, { N.call(a, kb:public_hex(), "gone", 1) })
    assert.is_true(b:revoke("gone"))
    assert.same({ false, "no_such_handle", "remote" }, { N.call(a, kb:public_hex(), "gone", 1) })
  end)

  it("answers forbidden when the authorize predicate refuses, without running the handler", function()
    local ran, asked = false, nil
    b:expose("secret", function() ran = true return 1 end,
      { authorize = function(from, name) asked = { from, name } return false end })
    assert.same({ false, "forbidden", "remote" }, { N.call(a, kb:public_hex(), "secret", {}) })
    assert.is_false(ran)
    assert.same({ ka:public_hex(), "secret" }, asked)
  end)

  it("replies {error, Reason} for nil, reason and a bare handler_crash for a raised error", function()
    b:expose("busy", function() return nil, peernet.atom("busy") end)
    b:expose("boom", function() error("secret detail /etc/passwd") end)
    assert.same({ false, "busy", "remote" }, { N.call(a, kb:public_hex(), "busy", 1) })
    local ok, reason, kind = N.call(a, kb:public_hex(), "boom", 1)
    assert.same({ false, "handler_crash", "remote" }, { ok, reason, kind })
    -- The details stay in the serving host's log.
    assert.matches("secret detail", table.concat(N.logs, "\n"))
  end)

  it("delivers a send to the handler and nothing comes back", function()
    local got
    b:expose("note", function(from, args, req) got = { from, args, req } return "ignored" end)
    local before = stats(a).frames_in
    assert.is_true(a:send(kb:public_hex(), "note", { text = "yo" }))
    assert(N.wait(function() return got end))
    assert.equal(ka:public_hex(), got[1])
    assert.equal("yo", got[2].text)
    assert.is_nil(got[3])
    -- Sentinel: a call's reply is sent after anything the send caused, on
    -- the same link; it is the only frame a receives.
    assert.same({ false, "no_such_handle", "remote" }, { N.call(a, kb:public_hex(), "spec_sync", nil) })
    assert.equal(before + 1, stats(a).frames_in)
  end)

  it("is walkie-talkie: call and send to a peer that is not connected fail at once", function()
    local kc = N.keys()
    a:trust(kc:public_hex())
    assert.same({ nil, "not_connected", "local", "estate" }, { a:send(kc:public_hex(), "x", 1) })
    local ok, err = a:call(kc:public_hex(), "x", 1, function() error("must not run") end)
    assert.is_nil(ok)
    assert.equal("not connected", err)
  end)

  it("times out a call that gets no reply and drops the late reply", function()
    local held
    b:expose("slow", function(_, _, req) held = req return req end)
    local ok, err, kind = N.call(a, kb:public_hex(), "slow", 1, { timeout = 50 })
    assert.same({ false, "timeout", "timeout" }, { ok, err, kind })
    -- a peer answering {error, timeout} reads the same reason, another kind
    b:expose("says_timeout", function() return nil, peernet.atom("timeout") end)
    assert.same({ false, "timeout", "remote" }, { N.call(a, kb:public_hex(), "says_timeout", 1) })
    held:reply("late")
    b:expose("echo", function(_, v) return v end)
    -- The late reply is dropped and the link goes on.
    assert.same({ true, 7 }, { N.call(a, kb:public_hex(), "echo", 7) })
    assert.equal("connected", a:peer(kb:public_hex()).status)
    assert.equal(0, stats(a).closed_protocol)
  end)

  it("times out calls with different timeouts each at its own deadline", function()
    local held = {}
    b:expose("hold", function(_, args, req) held[args] = req return req end)
    local order = {}
    for _, t in ipairs({ 150, 30, 90 }) do
      a:call(kb:public_hex(), "hold", t, function(ok, err) order[#order + 1] = { t, ok, err } end,
        { timeout = t })
    end
    local answered
    a:call(kb:public_hex(), "hold", 1, function(ok, v) answered = { ok, v } end)
    assert(N.wait(function() return #order == 3 end))
    assert.same({ { 30, false, "timeout" }, { 90, false, "timeout" }, { 150, false, "timeout" } }, order)
    held[1]:reply("in time")
    assert(N.wait(function() return answered end))
    assert.same({ true, "in time" }, answered)
  end)

  it("answers deferred calls in completion order", function()
    local held = {}
    b:expose("later", function(_, args, req) held[args] = req return req end)
    local order = {}
    for i = 1, 3 do
      a:call(kb:public_hex(), "later", i, function(ok, v) order[#order + 1] = v end)
    end
    assert(N.wait(function() return held[1] and held[2] and held[3] end))
    held[3]:reply(3); held[1]:reply(1); held[2]:reply(2)
    assert(N.wait(function() return #order == 3 end))
    assert.same({ 3, 1, 2 }, order)
  end)

  it("completes 1,000 calls in flight on one connection, coalescing writes", function()
    b:expose("echo", function(_, args) return args end)
    local got, bad = 0, 0
    local w0 = stats(a).writes
    for i = 1, 1000 do
      assert(a:call(kb:public_hex(), "echo", i, function(ok, v)
        if ok and v == i then got = got + 1 else bad = bad + 1 end
      end))
    end
    assert(N.wait(function() return got + bad == 1000 end))
    assert.equal(1000, got)
    assert.equal(1, stats(a).connections)
    -- 1,000 calls queued in one turn left in far fewer socket writes.
    assert.is_true(stats(a).writes - w0 < 100, "writes: " .. (stats(a).writes - w0))
  end)

  it("fails the calls in flight with closed when the connection goes", function()
    local held
    b:expose("hold", function(_, _, req) held = req return req end)
    local res
    a:call(kb:public_hex(), "hold", 1, function(...) res = { ... } end)
    assert(N.wait(function() return held end)) -- the call is being served at b
    b:untrust(ka:public_hex())
    assert(N.wait(function() return res end))
    assert.same({ false, "closed", "closed" }, res)
  end)

  it("refuses more calls in flight than max_calls_in_flight with overloaded", function()
    N.close(a, b)
    a, b, ka, kb = N.pair(nil, { max_calls_in_flight = 2 })
    b:expose("hold", function(_, _, req) return req end)
    local res = {}
    -- held calls end when the hosts close; no deadline races the refusal
    for i = 1, 3 do a:call(kb:public_hex(), "hold", i, function(...) res[i] = { ... } end, { timeout = 60000 }) end
    assert(N.wait(function() return res[3] end))
    assert.same({ false, "overloaded", "remote" }, res[3])
  end)

  it("refuses locally a call or send that would not fit the frame cap", function()
    N.close(a, b)
    a, b, ka, kb = N.pair({ frame_cap = 4096 }, { frame_cap = 4096 })
    b:expose("echo", function(_, v) return v end)
    local ok, err, _, code = a:call(kb:public_hex(), "echo", string.rep("x", 5000), function() end)
    assert.same({ nil, "etoobig" }, { ok, code })
    assert.is_string(err)
    assert.same({ nil, "etoobig" }, { select(1, a:send(kb:public_hex(), "echo", string.rep("x", 5000))),
      select(4, a:send(kb:public_hex(), "echo", string.rep("x", 5000))) })
    -- A reply too big for the cap reaches the caller as handler_crash.
    b:expose("big", function() return string.rep("y", 5000) end)
    assert.same({ false, "handler_crash", "remote" }, { N.call(a, kb:public_hex(), "big", 1) })
    assert.same({ true, "fits" }, { N.call(a, kb:public_hex(), "echo", "fits") })
  end)

  it("answers badarg for args with no Lua value (map keys that collide in Lua), and keeps serving", function()
    local ran = false
    b:expose("look", function() ran = true return 1 end)
    -- %{:a => 1, "a" => 2}: one key in Lua
    local clash = "t\0\0\0\2w\1aa\1m\0\0\0\1aa\2"
    -- raw: the reason comes back as ETF bytes too
    assert.same({ false, "w\6badarg", "remote" }, { N.call(a, kb:public_hex(), "look", clash, { raw = true }) })
    assert.is_false(ran)
    assert.same({ true, 1 }, { N.call(a, kb:public_hex(), "look", {}) })
  end)

  it("round-trips ids and values through raw ETF when asked", function()
    b:expose("raw", function(_, args) return args end, { raw = true })
    local term = etf.encode({ 1, 2 }):sub(2)
    local ok, v = N.call(a, kb:public_hex(), "raw", term, { raw = true })
    assert.is_true(ok)
    assert.equal(hex(term), hex(v))
  end)
end)

describe("peernet.host trust", function()
  it("never runs a handler for an untrusted initiator", function()
    local ka, kb = N.keys(), N.keys()
    local a, b = N.host(ka), N.host(kb) -- b does not trust a
    a:trust(kb:public_hex())
    local ran = false
    b:expose("echo", function() ran = true return 1 end)
    -- XX lets the initiator finish first; the responder refuses it at M3.
    N.connect(a, kb:public_hex(), N.addr(b))
    assert(N.wait(function() return a:peer(kb:public_hex()).status ~= "connected" end))
    assert(N.wait(function() return stats(b).handshakes_failed == 1 end))
    local ok = N.call(a, kb:public_hex(), "echo", 1)
    assert.is_falsy(ok)
    assert.is_false(ran)
    assert.equal(0, stats(b).connections)
    N.close(a, b)
  end)

  it("never runs a handler for a raw initiator the host does not trust", function()
    local kb = N.keys()
    local b = N.host(kb)
    local ran = false
    b:expose("echo", function() ran = true return 1 end)
    local raw = N.raw(b:port())
    local hs = raw:handshake(N.keys():secret())
    raw:send_env(env.call(1, "echo", etf.encode(1):sub(2)))
    assert.is_true(raw:wait_closed())
    assert.is_false(ran)
    assert.equal(1, stats(b).handshakes_failed)
    raw:close()
    N.close(b)
  end)

  it("refuses to dial an untrusted key, and fails a dial when another key answers", function()
    local ka, kb, kc = N.keys(), N.keys(), N.keys()
    local a, b = N.host(ka), N.host(kb, { trust = { ka:public_hex() } })
    local ok, err, _, code = a:connect(kc:public_hex(), N.addr(b), function() end)
    assert.is_nil(ok)
    assert.equal("etrust", code)
    assert.matches("not trusted", err)
    -- a expects kc at b's address: b's authenticated key differs.
    a:trust(kc:public_hex())
    local cok, cerr = N.connect(a, kc:public_hex(), N.addr(b))
    assert.is_false(cok)
    assert.matches("wrong key", cerr)
    assert.is_nil(a:peer(kb:public_hex()))
    assert.equal("disconnected", a:peer(kc:public_hex()).status)
    N.close(a, b)
  end)

  it("drops the live connection at once when a key is untrusted", function()
    local a, b, ka, kb = N.pair()
    local down = {}
    b:on("disconnected", function(k) down[#down + 1] = k end)
    assert.is_true(a:untrust(kb:public_hex()))
    assert.equal(0, stats(a).connections)
    assert(N.wait(function() return #down == 1 end))
    assert.equal(ka:public_hex(), down[1])
    assert.same({ nil, "not_connected", "local", "estate" }, { a:send(kb:public_hex(), "x", 1) })
    N.close(a, b)
  end)
end)

describe("peernet.host wire transcript", function()
  it("reproduces the responder side of the recorded v1 transcript byte for byte", function()
    local W = H.vector_file("peernet_wire_v1.json")
    local K, HS, F = W.keys, W.handshake, W.transport_frames
    local b = N.host(peernet.keys.from_secret(unhex(K.responder_static_priv)), {
      test_ephemeral = unhex(K.responder_ephemeral_priv),
      test_legacy_atoms = true,
      trust = { K.initiator_static_pub },
    })
    b:expose("echo", function(_, args) return args end, { raw = true })
    local chat
    b:expose("chat", function(_, args) chat = args end, { raw = true })
    local raw = N.raw(b:port())
    raw:write(unhex(HS.m1.wire_hex))
    assert.equal(HS.m2.wire_hex, hex(raw:frame()))
    raw:write(unhex(HS.m3.wire_hex))
    raw:write(unhex(F[1].wire_hex)) -- {call, 1, echo, %{text: "hi"}}
    assert.equal(F[2].wire_hex, hex(raw:frame()))
    raw:write(unhex(F[3].wire_hex)) -- {send, chat, %{text: "yo"}}
    assert(N.wait(function() return chat end))
    assert.equal(F[3].plaintext_etf_hex:sub(-38), hex(chat)) -- the map, as sent
    assert(b:ping(K.initiator_static_pub, string.rep("\0", 16)))
    assert.equal(F[4].wire_hex, hex(raw:frame()))
    local frames = stats(b).frames_in
    raw:write(unhex(F[5].wire_hex)) -- {pong, <<0::128>>}
    assert(N.wait(function() return stats(b).frames_in == frames + 1 end)) -- b has read the pong
    -- Sentinel: a frame b queues after reading the pong reaches the raw peer.
    assert(b:ping(K.initiator_static_pub, string.rep("\1", 16)))
    raw:frame()
    assert.is_false(raw.eof)
    assert.equal("connected", b:peer(K.initiator_static_pub).status)
    assert.equal(0, stats(b).closed_protocol)
    raw:close()
    N.close(b)
  end)
end)

describe("peernet.host stranger's bytes", function()
  -- Each bad connection is closed alone while a good peer keeps calling.
  local a, b, ka, kb, kr
  before_each(function()
    a, b, ka, kb = N.pair(nil, { frame_cap = 4096, max_outbuf = 16384 })
    b:expose("echo", function(_, args) return args end)
    kr = N.keys()
    b:trust(kr:public_hex())
  end)
  after_each(function() N.close(a, b) end)

  local function still_serving()
    assert.same({ true, "still" }, { N.call(a, kb:public_hex(), "echo", "still") })
  end

  it("closes a connection announcing a frame over the cap", function()
    local raw = N.raw(b:port())
    raw:handshake(kr:secret())
    raw:write(string.pack(">I4", 4097))
    assert.is_true(raw:wait_closed())
    still_serving()
  end)

  it("closes a connection sending garbage after the handshake", function()
    local raw = N.raw(b:port())
    raw:handshake(kr:secret())
    raw:write(string.pack(">s4", string.rep("\xff", 40)))
    assert.is_true(raw:wait_closed())
    assert.equal(1, stats(b).closed_protocol)
    still_serving()
  end)

  it("closes a connection sending a frame with a bad tag", function()
    local raw = N.raw(b:port())
    local hs = raw:handshake(kr:secret())
    local sealed = assert(hs:seal(env.call(5, "echo", etf.encode(1):sub(2))))
    sealed = sealed:sub(1, -2) .. string.char(sealed:byte(-1) ~ 1)
    raw:write(string.pack(">s4", sealed))
    assert.is_true(raw:wait_closed())
    still_serving()
  end)

  it("closes a connection whose plaintext is not an envelope, and garbage during the handshake", function()
    local raw = N.raw(b:port())
    raw:handshake(kr:secret())
    raw:send_env(etf.encode({ "not", "an", "envelope" }))
    assert.is_true(raw:wait_closed())
    local raw2 = N.raw(b:port())
    raw2:write(string.pack(">s4", "hello"))
    assert.is_true(raw2:wait_closed())
    still_serving()
  end)

  it("answers a raw peer that follows the protocol", function()
    local raw = N.raw(b:port())
    raw:handshake(kr:secret())
    raw:send_env(env.call("18446744073709551615", "echo", etf.encode("x"):sub(2)))
    local r = raw:recv_env()
    assert.equal("reply", r.kind)
    assert.equal("18446744073709551615", r.id_str)
    assert.is_true(r.ok)
    raw:send_env(env.ping(string.rep("\7", 16)))
    local p = raw:recv_env()
    assert.same({ "pong", string.rep("\7", 16) }, { p.kind, p.nonce })
    raw:close()
  end)

  -- Hand-made envelopes (version byte first) around terms peernet.envelope
  -- would refuse to write.
  local function atom(s) return "w" .. string.char(#s) .. s end
  local function id_term(id) return etf.encode(etf.bigint(id)):sub(2) end
  local function raw_call(id, name, args) return "\131h\4" .. atom("call") .. id_term(id) .. atom(name) .. args end
  local function raw_send(name, args) return "\131h\3" .. atom("send") .. atom(name) .. args end
  local function raw_reply(id, ok, term)
    return "\131h\3" .. atom("reply") .. id_term(id) .. "h\2" .. atom(ok and "ok" or "error") .. term
  end
  local vectors = H.vector_file("etf_vectors.json")
  local function foreign(name)
    for _, v in ipairs(vectors.must_reject) do
      if v.name == name then return unhex(v.hex):sub(2) end
    end
    error("no vector " .. name)
  end
  local P70 = "n\9\0" .. ("\0"):rep(8) .. "\64" -- 2^70

  it("echoes integers beyond int64 exactly, 2^70 byte for byte", function()
    local raw = N.raw(b:port())
    raw:handshake(kr:secret())
    local cases = {
      P70,
      "n\9\1" .. ("\0"):rep(8) .. "\1", -- -(2^64)
      "n\8\0" .. ("\0"):rep(7) .. "\128", -- 2^63
      "n\8\0" .. ("\255"):rep(8), -- 2^64-1
      "o\0\0\1\0\0" .. ("\0"):rep(255) .. "\1", -- 2^2040: LARGE_BIG
    }
    for i, term in ipairs(cases) do
      raw:send_env(raw_call(tostring(i), "echo", term))
      local r = raw:recv_env()
      assert.same({ "reply", tostring(i), true }, { r.kind, r.id_str, r.ok })
      assert.equal(hex(term), hex(r.term))
    end
    raw:close()
  end)

  it("answers a call whose args hold a pid, ref, port or fun with badarg, and keeps the link", function()
    local raw = N.raw(b:port())
    raw:handshake(kr:secret())
    local ran = 0
    b:expose("count", function() ran = ran + 1 return ran end)
    local terms = { foreign("pid"), foreign("reference"), foreign("port"), foreign("local_fun"),
      foreign("external_fun"), foreign("bitstring_3_bits"), "l\0\0\0\1a\1a\2" --[[ [1 | 2] ]],
      "l\0\0\0\2a\1" .. foreign("pid") .. "j", "F\127\248\0\0\0\0\0\0" --[[ NaN ]] }
    for i, t in ipairs(terms) do
      raw:send_env(raw_call(tostring(1000 + i), "count", t))
      local r = raw:recv_env()
      assert.same({ "reply", tostring(1000 + i), false }, { r.kind, r.id_str, r.ok }, "term " .. i)
      assert.equal(hex(etf.encode(peernet.atom("badarg")):sub(2)), hex(r.term))
      -- a send with such args is dropped, and the link stays
      raw:send_env(raw_send("count", t))
    end
    assert.equal(0, ran)
    raw:send_env(raw_call("18446744073709551615", "echo", P70))
    local r = raw:recv_env()
    assert.same({ "18446744073709551615", true, hex(P70) }, { r.id_str, r.ok, hex(r.term) })
    assert.is_false(raw.eof)
    assert.equal(0, stats(b).closed_protocol)
    assert.equal("connected", b:peer(kr:public_hex()).status)
    assert.matches("args outside the ETF subset %(etf: pid", table.concat(N.logs, "\n"))
    -- an unexposed name still says so first
    raw:send_env(raw_call("5", "nothing", foreign("pid")))
    assert.equal(hex(etf.encode(peernet.atom("no_such_handle")):sub(2)), hex(raw:recv_env().term))
    raw:close()
    still_serving()
  end)

  it("fails one call locally when its reply cannot be decoded, and keeps the link", function()
    local raw = N.raw(b:port())
    raw:handshake(kr:secret())
    assert(N.wait(function() return (b:peer(kr:public_hex()) or {}).status == "connected" end))
    local function call_raw_peer(opts, answer)
      local res
      local args = opts and opts.raw and "a\1" or 1
      assert(b:call(kr:public_hex(), "give", args, function(...) res = table.pack(...) end, opts))
      local c = raw:recv_env()
      assert.equal("call", c.kind)
      raw:send_env(answer(c.id_str))
      assert(N.wait(function() return res end))
      return res
    end
    -- {ok, Pid}: the caller learns why; not closed
    local res = call_raw_peer(nil, function(id) return raw_reply(id, true, foreign("pid")) end)
    assert.same({ false, "undecodable" }, { res[1], res[3] })
    assert.matches("^undecodable reply: etf: pid %(tag 88%) at byte 0 is not accepted", res[2])
    -- {error, {timeout, {GenServer, call, [Pid]}}}, as an Elixir exit reason looks
    local reason = "h\2" .. atom("timeout") .. "h\3" .. atom("Elixir.GenServer") .. atom("call")
      .. "l\0\0\0\1" .. foreign("pid") .. "j"
    res = call_raw_peer(nil, function(id) return raw_reply(id, false, reason) end)
    assert.same({ false, "remote" }, { res[1], res[3] })
    assert.matches("^undecodable reason: etf: pid", res[2])
    -- raw = true hands the bytes over as they came
    res = call_raw_peer({ raw = true }, function(id) return raw_reply(id, true, foreign("reference")) end)
    assert.same({ true, hex(foreign("reference")) }, { res[1], hex(res[2]) })
    -- the link is still there: a normal reply arrives
    res = call_raw_peer(nil, function(id) return raw_reply(id, true, P70) end)
    assert.is_true(res[1])
    assert.equal("1180591620717411303424", tostring(res[2]))
    assert.is_false(raw.eof)
    assert.equal(0, stats(b).closed_protocol)
    raw:close()
    still_serving()
  end)

  it("refuses our calls to a peer that stops reading past max_outbuf, busy, and keeps the link", function()
    local raw = N.raw(b:port())
    raw:handshake(kr:secret())
    raw.tcp:read_stop()
    assert(N.wait(function() return b:peer(kr:public_hex()).status == "connected" end))
    local big = string.rep("z", 3000)
    -- Calls, not sends: a send answers busy at half of max_outbuf. A peer
    -- that reads nothing at all is dropped by stall_timeout
    -- (backpressure_spec).
    local res
    for i = 1, 100000 do
      res = table.pack(b:call(kr:public_hex(), "x", big, function() end))
      if not res[1] then break end
      if i % 20 == 0 then require("luv").run("nowait") end
    end
    assert.same({ n = 3, nil, "busy", "local" }, res)
    assert.equal("connected", b:peer(kr:public_hex()).status)
    still_serving()
    raw:close()
  end)

  it("closes a connection that does not finish the handshake in time", function()
    N.close(b)
    b = N.host(kb, { handshake_timeout = 50, trust = { ka:public_hex() } })
    local raw = N.raw(b:port())
    assert.is_true(raw:wait_closed())
    assert.equal(1, stats(b).handshakes_failed)
    raw:close()
  end)

  it("evicts the oldest unheard connection beyond max_pending_handshakes, not the newcomer", function()
    N.close(b)
    b = N.host(kb, { max_pending_handshakes = 3 })
    local raws = {}
    for i = 1, 4 do raws[i] = N.raw(b:port()) end
    assert.is_true(raws[1]:wait_closed())
    assert(N.wait(function() return stats(b).evicted == 1 end))
    assert.equal(0, stats(b).refused)
    assert.equal(3, stats(b).handshaking)
    assert.equal(3, stats(b).unheard)
    assert.is_false(raws[4].eof)
    for _, r in ipairs(raws) do r:close() end
  end)
end)

describe("peernet.host liveness and reconnect", function()
  it("declares a silent peer dead", function()
    local kb, kr = N.keys(), N.keys()
    local b = N.host(kb, { ping_interval = 30, ping_timeout = 90, trust = { kr:public_hex() } })
    local down
    b:on("disconnected", function(k) down = k end)
    local raw = N.raw(b:port())
    raw:handshake(kr:secret())
    assert(N.wait(function() return (b:peer(kr:public_hex()) or {}).status == "connected" end))
    -- The raw peer reads the pings and never answers.
    assert.is_true(raw:wait_closed())
    assert.equal(kr:public_hex(), down)
    assert.equal("disconnected", b:peer(kr:public_hex()).status)
    raw:close()
    N.close(b)
  end)

  it("keeps a peer that answers its pings", function()
    -- Pings every 20 ms; a pong counts as late only after 5 s, so a busy
    -- machine cannot fail this. Ten rounds of pings and pongs each way are
    -- counted in frames, not waited for by the clock.
    local a, b, ka, kb = N.pair({ ping_interval = 20, ping_timeout = 5000 }, { ping_interval = 20, ping_timeout = 5000 })
    local before = stats(a).frames_in
    assert(N.wait(function() return stats(a).frames_in >= before + 20 end))
    assert.equal("connected", a:peer(kb:public_hex()).status)
    assert.equal(1, stats(a).connections)
    N.close(a, b)
  end)

  it("reconnects after the peer restarts on the same address", function()
    local ka, kb = N.keys(), N.keys()
    local a = N.host(ka, { backoff_min = 20, backoff_max = 100, trust = { kb:public_hex() } })
    local port = N.free_tcp_port()
    local b = N.host(kb, { listen = "127.0.0.1:" .. port, trust = { ka:public_hex() } })
    local ups = 0
    a:on("connected", function() ups = ups + 1 end)
    assert(N.connect(a, kb:public_hex(), N.addr(b)))
    N.close(b)
    assert(N.wait(function() return a:peer(kb:public_hex()).status ~= "connected" end))
    -- a few redials meet a closed port: each one's failure is logged or,
    -- past the log's rate limit, counted as suppressed
    local refused = "closed: connect to 127%.0%.0%.1:" .. port .. ": connection refused"
    local function failed_dials()
      local n = 0
      for _, l in ipairs(N.logs) do n = n + (l:find(refused) and 1 or 0) end
      return n + stats(a).log_suppressed
    end
    local failed = failed_dials()
    assert(N.wait(function() return failed_dials() >= failed + 3 end))
    b = N.host(kb, { listen = "127.0.0.1:" .. port, trust = { ka:public_hex() } })
    b:expose("echo", function(_, v) return v end)
    assert(N.wait(function() return a:peer(kb:public_hex()).status == "connected" end))
    assert.equal(2, ups)
    assert.same({ true, "back" }, { N.call(a, kb:public_hex(), "echo", "back") })
    N.close(a, b)
  end)

  it("ends a simultaneous dial with exactly one connection on both sides, without flapping", function()
    for _ = 1, 10 do
      local ka, kb = N.keys(), N.keys()
      local a, b = N.host(ka), N.host(kb)
      local ev = { a = {}, b = {} }
      a:on("connected", function() ev.a[#ev.a + 1] = "up" end)
      a:on("disconnected", function() ev.a[#ev.a + 1] = "down" end)
      b:on("connected", function() ev.b[#ev.b + 1] = "up" end)
      b:on("disconnected", function() ev.b[#ev.b + 1] = "down" end)
      -- Trusting with an address dials at once: both sides dial together.
      a:trust(kb:public_hex(), N.addr(b))
      b:trust(ka:public_hex(), N.addr(a))
      assert(N.wait(function()
        return stats(a).connections == 1 and stats(b).connections == 1
          and a:peer(kb:public_hex()).status == "connected" and b:peer(ka:public_hex()).status == "connected"
      end))
      -- Sentinel: a round trip each way on the link that stayed, after any
      -- close the tie-break could still send.
      assert.equal("no_such_handle", select(2, N.call(a, kb:public_hex(), "spec_sync", nil)))
      assert.equal("no_such_handle", select(2, N.call(b, ka:public_hex(), "spec_sync", nil)))
      assert.equal(1, stats(a).connections)
      assert.equal(1, stats(b).connections)
      assert.same({ "up" }, ev.a)
      assert.same({ "up" }, ev.b)
      b:expose("echo", function(_, v) return v end)
      assert.same({ true, 1 }, { N.call(a, kb:public_hex(), "echo", 1) })
      N.close(a, b)
    end
  end)
end)

describe("peernet.host first messages on a dialled link", function()
  -- The peer imitates the Elixir reference: what came in the same read as
  -- M3 is read only when a later segment arrives (support/net.lua).
  local a, ka, kr, peer
  before_each(function()
    ka, kr = N.keys(), N.keys()
    a = N.host(ka, { trust = { kr:public_hex() } })
    peer = N.m3_buffering_peer(kr:secret())
  end)
  after_each(function()
    peer.close()
    N.close(a)
  end)

  it("gets the answer to a call made as soon as the link is up", function()
    for i = 1, 5 do
      local res
      a:connect(kr:public_hex(), "127.0.0.1:" .. peer.port, function(ok, err)
        assert(ok, err)
        assert(a:call(kr:public_hex(), "echo", "first " .. i, function(...) res = { ... } end,
          { timeout = 3000 }))
      end)
      assert(N.wait(function() return res end))
      assert.same({ true, "first " .. i }, res)
      N.close(a)
      a = N.host(ka, { trust = { kr:public_hex() } })
    end
  end)

  it("delivers a send made as soon as the link is up before a short-lived host closes", function()
    local sent
    a:connect(kr:public_hex(), "127.0.0.1:" .. peer.port, function(ok, err)
      assert(ok, err)
      sent = assert(a:send(kr:public_hex(), "note", "hello"))
    end)
    -- What peernet-host send does before it exits: wait for the link to settle.
    assert(N.wait(function() return sent and not a:peer(kr:public_hex()).settling end))
    N.close(a)
    a = N.host(ka)
    assert(N.wait(function() return #peer.sends == 1 or peer.stuck > 0 end))
    assert.same({ "hello" }, peer.sends)
    assert.equal(0, peer.stuck)
  end)

  it("adds no settle ping on a link the peer dialled", function()
    local kb = N.keys()
    local b = N.host(kb, { trust = { ka:public_hex() } })
    a:trust(kb:public_hex())
    assert(N.connect(b, ka:public_hex(), N.addr(a)))
    assert(N.wait(function() return (a:peer(kb:public_hex()) or {}).status == "connected" end))
    assert.is_false(a:peer(kb:public_hex()).settling)
    assert(N.wait(function() return not b:peer(ka:public_hex()).settling end))
    -- A call b makes now is answered after any ping a would have sent when
    -- the link came up: an ordering sentinel, not a wait.
    local answered
    assert(b:call(ka:public_hex(), "spec_sync", nil, function() answered = true end))
    assert(N.wait(function() return answered end))
    -- a sent M2, one pong per settle ping of b's (a busy machine may make b
    -- ping more than once) and the answer; no ping of its own. b sent M1, M3,
    -- its pings and the call.
    local pings = stats(b).frames_out - 3
    assert.is_true(pings >= 1)
    assert.equal(1 + pings + 1, stats(a).frames_out)
    assert.equal(stats(a).frames_out, stats(b).frames_in)
    N.close(b)
  end)
end)

describe("peernet.host duplicate connections", function()
  -- Keys in a given order: true when a's key is the lower one.
  local function keys_ordered(a_lower)
    while true do
      local ka, kr = N.keys(), N.keys()
      if (ka:public_hex() < kr:public_hex()) == a_lower then return ka, kr end
    end
  end

  for _, a_lower in ipairs { true, false } do
    local order = a_lower and "lower" or "higher"
    it("keeps the peer's new dial while a link it dialled is up, as the reference does (its key "
      .. order .. ")", function()
      local ka, kr = keys_ordered(a_lower)
      local a = N.host(ka, { trust = { kr:public_hex() } })
      local peer = N.m3_buffering_peer(kr:secret())
      a:expose("echo", function(_, v) return v end)
      local ev = {}
      a:on("connected", function() ev[#ev + 1] = "up" end)
      a:on("disconnected", function(_, why) ev[#ev + 1] = "down: " .. why end)
      assert(N.connect(a, kr:public_hex(), "127.0.0.1:" .. peer.port))
      assert.same({ true, "on the first" }, { N.call(a, kr:public_hex(), "echo", "on the first") })
      -- The peer dials while the link a dialled is up (the reference keeps
      -- the newest connection and closes the old one itself).
      local raw = N.raw(a:port())
      raw:handshake(kr:secret())
      raw:send_env(env.call(7, "echo", etf.encode("on the second"):sub(2)))
      local r = raw:recv_env()
      assert.same({ "reply", 7, true }, { r.kind, r.id, r.ok })
      -- a closed the link it had dialled and calls on the new one.
      assert(N.wait(function() return peer.closed == 1 end))
      assert.same({ true, "back" }, call_over_raw(a, kr:public_hex(), raw, "back"))
      assert.equal(1, stats(a).connections)
      assert.same({ "up" }, ev) -- no outage: never disconnected
      assert.matches("replaced by a newer connection", table.concat(N.logs, "\n"))
      raw:close()
      peer.close()
      N.close(a)
    end)
  end

  for _, a_lower in ipairs { true, false } do
    local order = a_lower and "lower" or "higher"
    it("ends its own dial still under way when the peer's dial comes up first, so the peer never "
      .. "replaces the link (its key " .. order .. ")", function()
      -- The reference keeps the newest link and fails its calls in flight
      -- on the one it replaces: a dial of ours completing after the peer's
      -- would cost it those calls.
      local ka, kr = keys_ordered(a_lower)
      local a = N.host(ka, { trust = { kr:public_hex() } })
      a:expose("echo", function(_, v) return v end)
      local ev = {}
      a:on("connected", function() ev[#ev + 1] = "up" end)
      a:on("disconnected", function(_, why) ev[#ev + 1] = "down: " .. why end)
      local peer = N.m3_buffering_peer(kr:secret(), { held = true })
      local dialled
      assert(a:connect(kr:public_hex(), "127.0.0.1:" .. peer.port, function(...) dialled = { ... } end))
      assert(N.wait(function() return peer.held == 1 end)) -- a's dial waits in the peer's acceptor
      local raw = N.raw(a:port())
      raw:handshake(kr:secret())
      assert(N.wait(function() return dialled end))
      assert.same({ true }, dialled) -- connect is answered by the link the peer made
      peer.release()
      assert(N.wait(function() return peer.closed == 1 end))
      assert.equal(0, peer.done) -- a closed its dial before message 3
      -- The peer's link is the one in use, and the only one.
      raw:send_env(env.call(5, "echo", etf.encode("still here"):sub(2)))
      local r = raw:recv_env()
      assert.same({ "reply", 5, true }, { r.kind, r.id, r.ok })
      assert.same({ true, "ours" }, call_over_raw(a, kr:public_hex(), raw, "ours"))
      assert.equal(1, stats(a).connections)
      assert.same({ "up" }, ev)
      assert.is_false(raw.eof)
      raw:close()
      peer.close()
      N.close(a)
    end)
  end

  it("drains the replaced link: calls in flight on it get their answers both ways, then it closes", function()
    local ka, kr = N.keys(), N.keys()
    local a = N.host(ka, { trust = { kr:public_hex() } })
    local held, ev = nil, {}
    a:expose("later", function(_, _, req) held = req return req end)
    a:on("connected", function() ev[#ev + 1] = "up" end)
    a:on("disconnected", function() ev[#ev + 1] = "down" end)
    local old = N.raw(a:port())
    old:handshake(kr:secret())
    old:send_env(env.call(3, "later", etf.encode(1):sub(2))) -- the peer's call, being served
    assert(N.wait(function() return held end))
    local res
    assert(a:call(kr:public_hex(), "echo", "x", function(...) res = { ... } end)) -- ours, on old
    local c = old:recv_env()
    assert.equal("call", c.kind)
    local new = N.raw(a:port())
    new:handshake(kr:secret())
    -- New traffic goes on the new link once it is up (both count) ...
    assert(N.wait(function() return a:peer(kr:public_hex()).connections == 2 end))
    assert(a:send(kr:public_hex(), "note", "on new"))
    assert.equal("send", new:recv_env().kind)
    -- ... while what was under way on the old one finishes there.
    old:send_env(env.reply(c.id_str or c.id, true, c.term))
    assert(N.wait(function() return res end))
    assert.same({ true, "x" }, res)
    held:reply("done")
    local r = old:recv_env()
    assert.same({ "reply", 3, true }, { r.kind, r.id, r.ok })
    assert.is_true(old:wait_closed())
    assert.same({ "up" }, ev)
    assert.equal(1, stats(a).connections)
    old:close()
    new:close()
    N.close(a)
  end)

  it("keeps one replaced link per peer draining: the next replacement closes the older at once", function()
    -- Each link a trusted peer opens holds a slow call; a long call_timeout
    -- would keep every replaced link (and up to frame_cap of a frame on
    -- it) open for a minute.
    local ka, kr = N.keys(), N.keys()
    local a = N.host(ka, { trust = { kr:public_hex() }, call_timeout = 60000 })
    local held = {}
    a:expose("slow", function(_, _, req) held[#held + 1] = req return req end)
    local links = {}
    local function link(i)
      links[i] = N.raw(a:port())
      links[i]:handshake(kr:secret())
      links[i]:send_env(env.call(i, "slow", etf.encode(i):sub(2)))
      assert(N.wait(function() return #held == i end))
    end
    for i = 1, 3 do link(i) end
    assert.is_true(links[1]:wait_closed())
    assert.is_false(links[2].eof)
    assert.equal(2, stats(a).connections)
    -- The one replaced link left still carries the answer to its call.
    held[2]:reply("two")
    local r = links[2]:recv_env()
    assert.same({ "reply", 2, true }, { r.kind, r.id, r.ok })
    -- However often it reconnects, the peer holds two links at most.
    for i = 4, 20 do link(i) end
    for i = 1, 18 do assert.is_true(links[i]:wait_closed(), "link " .. i .. " still open") end
    assert.equal(2, stats(a).connections)
    assert.is_false(links[19].eof) -- replaced by 20, its call still being served
    assert.is_false(links[20].eof)
    assert.equal("connected", a:peer(kr:public_hex()).status)
    for _, l in ipairs(links) do l:close() end
    N.close(a)
  end)

  it("lets a peer that restarted replace its old link, in both key orders", function()
    for _, a_lower in ipairs { true, false } do
      local ka, kr = keys_ordered(a_lower)
      local a = N.host(ka, { trust = { kr:public_hex() } })
      local old = N.raw(a:port())
      old:handshake(kr:secret())
      assert(N.wait(function() return (a:peer(kr:public_hex()) or {}).status == "connected" end))
      local new = N.raw(a:port())
      new:handshake(kr:secret())
      assert.is_true(old:wait_closed())
      new:send_env(env.ping(string.rep("\1", 16)))
      assert.equal("pong", new:recv_env().kind)
      old:close()
      new:close()
      N.close(a)
    end
  end)
end)

describe("peernet.host listening and trust file", function()
  it("listens on IPv6 and on both families at once, reporting the port it picked", function()
    local ka, kb = N.keys(), N.keys()
    local probe = peernet.host.new { secret = kb:secret(), listen = "[::1]:0" }
    if not probe then
      pending("no IPv6 loopback on this machine: IPv6 listening not checked")
      return
    end
    probe:close()
    for _, listen in ipairs({ "[::1]:0", "[::]:0" }) do
      local b = N.host(kb, { listen = listen, trust = { ka:public_hex() } })
      b:expose("echo", function(_, v) return v end)
      assert.is_true(b:port() > 0)
      local dials = listen == "[::]:0" and { "[::1]:", "127.0.0.1:" } or { "[::1]:" }
      for _, prefix in ipairs(dials) do
        local a = N.host(ka, { trust = { kb:public_hex() } })
        assert.is_true(N.connect(a, kb:public_hex(), prefix .. b:port()))
        assert.same({ true, prefix }, { N.call(a, kb:public_hex(), "echo", prefix) })
        N.close(a)
      end
      N.close(b)
    end
  end)

  it("refuses connections beyond max_connections", function()
    local kb = N.keys()
    local b = N.host(kb, { max_connections = 2 })
    local r1, r2, r3 = N.raw(b:port()), N.raw(b:port()), N.raw(b:port())
    assert.is_true(r3:wait_closed())
    assert.equal(2, stats(b).connections)
    assert.equal(1, stats(b).refused)
    for _, r in ipairs({ r1, r2, r3 }) do r:close() end
    N.close(b)
  end)

  it("follows a trust file edited by hand: added keys connect, removed keys are dropped", function()
    local dir = H.tmpdir()
    local path = dir .. "/trust.list"
    local ka, kb = N.keys(), N.keys()
    local b = N.host(kb, { trust = { ka:public_hex() } })
    b:expose("echo", function(_, v) return v end)
    H.write_file(path, "# peers\n")
    local a = N.host(ka)
    assert(a:trust_file(path))
    assert.is_nil(a:connect(kb:public_hex(), N.addr(b), function() end))
    -- Adding the line (with an address) trusts and dials the peer.
    H.write_file(path, "# peers\n" .. kb:public_hex() .. " laptop " .. N.addr(b) .. "\n")
    assert(N.wait(function() return (a:peer(kb:public_hex()) or {}).status == "connected" end))
    assert.same({ true, "hi" }, { N.call(a, kb:public_hex(), "echo", "hi") })
    -- A file that does not parse changes nothing.
    H.write_file(path, "# peers\n" .. kb:public_hex() .. " laptop not-an-address\n")
    assert(N.wait(function() return table.concat(N.logs, "\n"):match("not reloaded") end))
    assert.equal("connected", a:peer(kb:public_hex()).status)
    -- Removing the line drops the link at once.
    H.write_file(path, "# peers\n")
    assert(N.wait(function() return a:peer(kb:public_hex()).status == "disconnected" end))
    assert.is_false(a:peer(kb:public_hex()).trusted)
    N.close(a, b)
    H.rmdir(dir)
  end)
end)

describe("peernet.host re-entrancy", function()
  local a, b, ka, kb
  before_each(function() a, b, ka, kb = N.pair() end)
  after_each(function() N.close(a, b) end)

  it("lets a handler answer through req:reply() before it returns", function()
    b:expose("now", function(_, args, req) req:reply(args * 2) end)
    b:expose("raw_later", function(_, args, req) req:reply(args) return req end, { raw = true })
    assert.same({ true, 42 }, { N.call(a, kb:public_hex(), "now", 21) })
    -- A raw handler's deferred answer is the ETF term itself, not a binary of it.
    assert.same({ true, 7 }, { N.call(a, kb:public_hex(), "raw_later", 7) })
  end)

  it("survives a handler that revokes itself, and one that closes its host", function()
    b:expose("once", function() b:revoke("once") return "first" end)
    assert.same({ true, "first" }, { N.call(a, kb:public_hex(), "once", 1) })
    assert.same({ false, "no_such_handle", "remote" }, { N.call(a, kb:public_hex(), "once", 1) })
    b:expose("stop", function() b:close() return "bye" end)
    local ok, err, kind = N.call(a, kb:public_hex(), "stop", 1)
    assert.is_false(ok)
    assert.equal("closed", kind)
  end)

  it("does not run a handler whose predicate untrusted the caller or revoked the name", function()
    local ran = 0
    b:expose("gone", function() ran = ran + 1 return 1 end,
      { authorize = function() b:revoke("gone") return true end })
    assert.same({ false, "no_such_handle", "remote" }, { N.call(a, kb:public_hex(), "gone", 1) })
    b:expose("kick", function() ran = ran + 1 return 1 end,
      { authorize = function(from) b:untrust(from) return true end })
    local ok, _, kind = N.call(a, kb:public_hex(), "kick", 1)
    assert.is_false(ok)
    assert.equal("closed", kind)
    assert.equal(0, ran)
  end)
end)

describe("peernet.host dial failures", function()
  it("reports a dial that fails at once and dials again when asked", function()
    local ka, kb = N.keys(), N.keys()
    local a = N.host(ka, { trust = { kb:public_hex() } })
    local b = N.host(kb, { trust = { ka:public_hex() } })
    local ok, err = N.connect(a, kb:public_hex(), "255.255.255.255:4040")
    assert.is_false(ok)
    assert.is_string(err)
    assert.equal(0, stats(a).connections)
    assert.is_true(N.connect(a, kb:public_hex(), N.addr(b)))
    N.close(a, b)
  end)

  it("keeps a key trusted through the API when the trust file drops it", function()
    local dir = H.tmpdir()
    local path = dir .. "/trust.list"
    local kb = N.keys()
    H.write_file(path, kb:public_hex() .. "\n")
    local a = N.host(N.keys(), { trust = { kb:public_hex() } })
    assert(a:trust_file(path))
    H.write_file(path, "# empty\n")
    assert(N.wait(function() return table.concat(N.logs, "\n"):match("trust list reloaded") end))
    assert.is_true(a:peer(kb:public_hex()).trusted)
    N.close(a)
    H.rmdir(dir)
  end)
end)
