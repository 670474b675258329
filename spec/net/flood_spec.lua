-- Strangers and forged packets: what a host does when someone it does not
-- trust holds connections open, talks slowly, floods it with first
-- messages or forges announces, and what reaches its log meanwhile. Real
-- hosts and raw TCP/UDP on 127.0.0.1; every wait is on a condition.
local peernet = require "peernet"
local uv = require "luv"
local N = require "support.net"

local function stats(h) return h:stats() end

-- A valid-looking message 1 from a fresh key: the bytes an attacker sends
-- for free (the host has to do the X25519 work of message 2).
local function m1_frame()
  local hs = assert(peernet.handshake.new { role = "initiator", static = N.keys():secret(),
    verify = function() return true end })
  return string.pack(">s4", assert(hs:write())), hs
end

local function log_lines(pattern)
  local out = {}
  for _, l in ipairs(N.logs) do
    if l:find(pattern) then out[#out + 1] = l end
  end
  return out
end

describe("pending handshakes under a flood", function()
  it("lets a trusted peer connect while 70 idle connections from one source hold the pool", function()
    local ka, kb = N.keys(), N.keys()
    local b = N.host(kb, { trust = { ka:public_hex() } })
    b:expose("echo", function(_, v) return v end)
    local idle = {}
    for i = 1, 70 do idle[i] = N.raw(b:port()) end
    assert(N.wait(function() return stats(b).accepted + stats(b).refused >= 70 end))
    local a = N.host(ka, { trust = { kb:public_hex() } })
    assert.same({ true }, { (N.connect(a, kb:public_hex(), N.addr(b))) })
    assert.same({ true, "through" }, { N.call(a, kb:public_hex(), "echo", "through") })
    -- One source holds at most max_pending_per_source unheard slots; the
    -- newcomers pushed out the oldest instead of being refused.
    local s = stats(b)
    assert.equal(0, s.refused)
    assert.is_true(s.unheard <= 16, "unheard: " .. s.unheard)
    assert.is_true(s.evicted >= 70 - 16, "evicted: " .. s.evicted)
    -- The oldest idle connections are the ones that went.
    assert.is_true(idle[1]:wait_closed())
    assert.is_false(idle[70].eof)
    for _, r in ipairs(idle) do r:close() end
    N.close(a, b)
  end)

  it("keeps a peer that has sent message 1 while idle connections churn", function()
    local kb, kr = N.keys(), N.keys()
    local b = N.host(kb, { max_pending_handshakes = 4, max_pending_per_source = 4,
      trust = { kr:public_hex() } })
    local raw = N.raw(b:port())
    local hs = assert(peernet.handshake.new { role = "initiator", static = kr:secret(),
      verify = function() return true end })
    raw:write(string.pack(">s4", assert(hs:write())))
    local _, m2 = raw:frame()
    -- Twenty idle newcomers: each evicts an older idle one, never the
    -- connection that has spoken.
    local idle = {}
    for i = 1, 20 do idle[i] = N.raw(b:port()) end
    assert(N.wait(function() return stats(b).accepted >= 21 end))
    assert(N.wait(function() return stats(b).evicted >= 16 end))
    assert(hs:read(m2))
    raw:write(string.pack(">s4", assert(hs:write())))
    assert(N.wait(function() return (b:peer(kr:public_hex()) or {}).status == "connected" end))
    assert.is_false(raw.eof)
    for _, r in ipairs(idle) do r:close() end
    raw:close()
    N.close(b)
  end)

  it("cuts a slowloris at the first-message deadline, however often it sends a byte", function()
    local kb = N.keys()
    local b = N.host(kb, { first_message_timeout = 100, handshake_timeout = 60000 })
    local raw = N.raw(b:port())
    local m1 = m1_frame()
    -- One byte of a real message 1 every 10 ms: the whole takes 420 ms.
    local i = 0
    local drip = uv.new_timer()
    drip:start(0, 10, function()
      i = i + 1
      if i <= #m1 and not raw.eof then raw:write(m1:sub(i, i)) end
    end)
    assert.is_true(raw:wait_closed())
    drip:close()
    assert.is_true(i < #m1, "the whole message 1 went out before the cut")
    assert.equal(1, #log_lines("no complete handshake message 1 within 100 ms"))
    assert.equal(1, stats(b).handshakes_failed)
    raw:close()
    N.close(b)
  end)

  it("keeps a peer that has its message 2 while a flood of message 1s overfills the queue", function()
    local kb, kr = N.keys(), N.keys()
    -- About one token a second once the burst of 8 is spent.
    local b = N.host(kb, { handshake_rate = 1, max_pending_handshakes = 4,
      max_pending_per_source = 4, trust = { kr:public_hex() } })
    -- Seven strangers spend most of the burst: they get message 2 and go silent.
    local raws = {}
    for i = 1, 7 do
      raws[i] = N.raw(b:port())
      raws[i]:write((m1_frame()))
    end
    assert(N.wait(function()
      for _, r in ipairs(raws) do
        if #r.inbox == 0 and not r.eof then return false end
      end
      return true
    end))
    local raw = N.raw(b:port())
    local hs = assert(peernet.handshake.new { role = "initiator", static = kr:secret(),
      verify = function() return true end })
    raw:write(string.pack(">s4", assert(hs:write())))
    local _, m2 = raw:frame()
    -- Thirty more message 1s, no token for them: the queue is full after
    -- four, and each newcomer over it closes a waiter, never a connection
    -- that has its message 2.
    for i = 8, 37 do
      raws[i] = N.raw(b:port())
      raws[i]:write((m1_frame()))
    end
    assert(N.wait(function() return stats(b).evicted >= 30 - 4 end))
    assert.is_false(raw.eof, "the peer owing message 3 was evicted")
    local s = stats(b)
    assert.is_true(s.waiting <= 4, "waiting: " .. s.waiting)
    assert(hs:read(m2))
    raw:write(string.pack(">s4", assert(hs:write())))
    assert(N.wait(function() return (b:peer(kr:public_hex()) or {}).status == "connected" end))
    assert.is_false(raw.eof)
    assert.equal(0, #log_lines("evicted: heard"))
    for _, r in ipairs(raws) do r:close() end
    raw:close()
    N.close(b)
  end)

  it("keeps a waiting peer's message 1 while a flood from another source overfills the queue", function()
    local kb, kr = N.keys(), N.keys()
    -- The source's share (16) is above the pool's bound (4): what is
    -- pinned is the choice over the pool's bound.
    local b = N.host(kb, { handshake_rate = 1, max_pending_handshakes = 4,
      trust = { kr:public_hex() } })
    -- The burst spent, so what comes next waits for a token (one a second).
    local raws = {}
    for i = 1, 8 do
      raws[i] = N.raw(b:port())
      raws[i]:write((m1_frame()))
    end
    assert(N.wait(function() return stats(b).heard >= 8 end))
    local raw = N.raw(b:port()) -- from 127.0.0.1
    local hs = assert(peernet.handshake.new { role = "initiator", static = kr:secret(),
      verify = function() return true end })
    raw:write(string.pack(">s4", assert(hs:write())))
    assert(N.wait(function() return stats(b).waiting == 1 end))
    -- Thirty message 1s from 127.0.0.2: over the pool's bound each closes
    -- one of the source holding most of the queue, which is theirs.
    -- One at a time, each read before the next (the unheard pool is not
    -- what this is about).
    local flood = {}
    local function seen() return stats(b).handshake_waits + stats(b).evicted end
    for i = 1, 30 do
      local t, before = uv.new_tcp(), seen()
      assert(t:bind("127.0.0.2", 0))
      t:connect("127.0.0.1", b:port(), function(err)
        assert(not err, err)
        t:write((m1_frame()))
        t:read_start(function() end)
      end)
      flood[i] = t
      assert(N.wait(function() return seen() > before end))
    end
    assert(stats(b).evicted >= 30 - 3, "evicted: " .. stats(b).evicted)
    assert.is_false(raw.eof, "the trusted peer's waiting message 1 was closed")
    local _, m2 = raw:frame() -- its token comes
    assert(hs:read(m2))
    raw:write(string.pack(">s4", assert(hs:write())))
    assert(N.wait(function() return (b:peer(kr:public_hex()) or {}).status == "connected" end))
    for _, t in ipairs(flood) do t:close() end
    for _, r in ipairs(raws) do r:close() end
    raw:close()
    N.close(b)
  end)

  it("makes message 1 over the handshake budget wait its turn instead of costing CPU now", function()
    local kb = N.keys()
    -- One token a second after the first burst: within this spec, the
    -- burst (and a token or two) is all the host spends.
    local b = N.host(kb, { handshake_rate = 1, max_pending_per_source = 64 })
    local raws, got = {}, 0
    for i = 1, 40 do
      raws[i] = N.raw(b:port())
      raws[i]:write((m1_frame()))
    end
    assert(N.wait(function() return stats(b).heard + stats(b).waiting == 40 end))
    local s = stats(b)
    -- A burst of 8 (PN_HANDSHAKE_BURST), then one a second.
    assert.is_true(s.handshake_waits >= 40 - 8 - 1, "waits: " .. s.handshake_waits)
    -- The first ones in got their message 2; the last ones wait.
    assert.is_true(#raws[1]:frame() > 0)
    for _, r in ipairs(raws) do
      if #r.inbox > 0 then got = got + 1 end
    end
    assert.is_true(got <= 9, "answered at once: " .. got)
    assert.equal(0, #raws[40].inbox)
    assert.is_false(raws[40].eof)
    for _, r in ipairs(raws) do r:close() end
    N.close(b)
  end)
end)

describe("log lines a stranger or a peer can cause", function()
  it("are rate-limited per kind, with a count of what was held back", function()
    local kb = N.keys()
    local b = N.host(kb, { max_connections = 2, log_window = 200 })
    local raws = {}
    for i = 1, 22 do raws[i] = N.raw(b:port()) end
    assert(N.wait(function() return stats(b).refused == 20 end))
    -- The summary comes when the window ends.
    assert(N.wait(function() return #log_lines("more in the last 200 ms") >= 1 end))
    local lines, held = log_lines("connection refused"), 0
    for _, l in ipairs(lines) do
      held = held + tonumber(l:match("%((%d+) more in the last") or 0)
    end
    local written = #lines - #log_lines("more in the last 200 ms")
    assert.equal(20, written + held)
    assert.is_true(written <= 2, "written: " .. written)
    assert.equal(held, stats(b).log_suppressed)
    for _, r in ipairs(raws) do r:close() end
    N.close(b)
  end)

  -- Hand-made call envelopes around terms a trusted peer may send at will.
  local function atom(s) return "w" .. string.char(#s) .. s end
  local function raw_call(id, name, args)
    return "\131h\4" .. atom("call") .. peernet.etf.encode(id):sub(2) .. atom(name) .. args
  end
  local PID = "X" .. atom("nonode@nohost") .. "\0\0\0\1\0\0\0\0\0\0\0\0"
  local ONE_AND_ONE_POINT_O = "t\0\0\0\2a\1a\1F" .. string.pack(">d", 1.0) .. "a\2" -- one Lua key

  -- n calls of name with args from a raw trusted peer, all sent before
  -- the replies are read; each is answered with an error.
  local function flood_calls(b, name, args, n)
    local kr = N.keys()
    b:trust(kr:public_hex())
    local raw = N.raw(b:port())
    raw:handshake(kr:secret())
    for i = 1, n do raw:send_env(raw_call(i, name, args)) end
    for i = 1, n do
      local r = raw:recv_env()
      assert.same({ "reply", false, peernet.etf.encode(peernet.atom("badarg")):sub(2) },
        { r.kind, r.ok, r.term }, "call " .. i)
    end
    raw:close()
  end

  -- Lines matching pattern written at once, and those a summary counted.
  local function written_and_held(pattern, window)
    local written, held = 0, 0
    for _, l in ipairs(log_lines(pattern)) do
      local more = l:match("%((%d+) more in the last " .. window .. "%)$")
      if more then held = held + tonumber(more) else written = written + 1 end
    end
    return written, held
  end

  it("from a trusted peer's calls with args outside the subset are rate-limited per peer", function()
    N.logs = {}
    local b = N.host(N.keys(), { log_window = 200 })
    b:expose("echo", function(_, args) return args end)
    flood_calls(b, "echo", PID, 2000)
    assert(N.wait(function()
      local written, held = written_and_held("args outside the ETF subset", "200 ms")
      return written + held == 2000
    end), table.concat(log_lines("args outside"), "\n"):sub(1, 3000))
    local written = written_and_held("args outside the ETF subset", "200 ms")
    assert.is_true(written <= 3, "written: " .. written)
    N.close(b)
  end)

  it("from a handler that cannot be given the arguments are rate-limited per handler", function()
    N.logs = {}
    local b = N.host(N.keys(), { log_window = 200 })
    local dir = H.tmpdir()
    H.replace_file(dir .. "/echo.lua", 'peernet.expose("echo", function(_, args) return args end)')
    local rt = assert(peernet.runtime.new(b, { log = function(level, msg)
      N.logs[#N.logs + 1] = level .. " " .. msg
    end }))
    rt:load_dir(dir)
    flood_calls(b, "echo", ONE_AND_ONE_POINT_O, 2000)
    assert(N.wait(function()
      local written, held = written_and_held("cannot pass the arguments", "200 ms")
      return written + held == 2000
    end))
    local written = written_and_held("cannot pass the arguments", "200 ms")
    assert.is_true(written <= 3, "written: " .. written)
    rt:close()
    N.close(b)
    H.rmdir(dir)
  end)

  it("escape a newline in a call name, so a peer cannot forge a log line", function()
    local a, b, _, kb = N.pair(nil, { max_calls_in_flight = 1 })
    b:expose("hold", function(_, _, req) return req end)
    a:call(kb:public_hex(), "hold", 1, function() end)
    local ok, err = N.call(a, kb:public_hex(), "x\nerror FORGED by a peer\27[2J", 1)
    assert.same({ false, "overloaded" }, { ok, err })
    local line = log_lines("calls in flight")[1]
    assert.is_string(line)
    assert.matches("'x\\nerror FORGED by a peer\\x1b[2J' refused", line, 1, true)
    for _, l in ipairs(N.logs) do
      assert.is_nil(l:find("[%c]"), "a control character reached the log: " .. l)
    end
    N.close(a, b)
  end)
end)

describe("garbage datagrams from anyone on the LAN, at debug level", function()
  -- Every line of a host, debug ones too, through its log callback (not
  -- N.logs, which keeps the last 2000). A spec closes its host to have the
  -- summaries written; after_each closes one a failed assertion left open.
  local open
  after_each(function() if open then pcall(open.close, open) end end)
  local function logged_host(opts)
    local lines = {}
    opts.log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end
    open = N.host(N.keys(), opts)
    return open, lines
  end
  local function count(lines, pattern)
    local written, held = 0, 0
    for _, l in ipairs(lines) do
      if l:find(pattern, 1, true) then
        local more = l:match("%((%d+) more in the last 60 s%)$")
        if more then held = held + tonumber(more) else written = written + 1 end
      end
    end
    return written, held
  end
  -- n copies of dgram to port, in batches the socket's receive buffer
  -- (about 200 KiB) holds, each waited for through the counter it moves.
  local function flood(port, dgram, n, counter)
    local per = #dgram > 1000 and 10 or 100
    for _ = 1, n / per do
      local before = counter()
      local batch = {}
      for i = 1, per do batch[i] = dgram end
      N.udp_send(port, batch)
      assert(N.wait(function() return counter() >= before + per end))
    end
  end
  local N_FLOOD = 2000

  it("write one line per kind and window, and a summary with the count", function()
    local port = N.free_udp_port()
    local h, lines = logged_host { discovery = true, announce_port = port, announce_v6 = false,
      broadcast = "127.255.255.255", announce_interval = 60000, log_window = 60000 }
    local function heard() return stats(h).announces_in end
    flood(port, "garbage", N_FLOOD, heard)
    flood(port, ("x"):rep(200), N_FLOOD, heard)
    -- The summaries come when the window ends, or when the host closes.
    N.close(h)
    assert.same({ 1, N_FLOOD - 1 }, { count(lines, "discovery: ignored:") })
    assert.same({ 1, N_FLOOD - 1 }, { count(lines, "discovery: datagram over") })
    assert.is_true(#lines < 20, "lines: " .. #lines)
  end)

  it("to the mDNS port write one line per kind and window too", function()
    local port = N.free_udp_port()
    local h, lines = logged_host { mdns = true, mdns_port = port, log_window = 60000 }
    local function heard() return stats(h).mdns_rejected end
    flood(port, "\0\1\2", N_FLOOD, heard)
    flood(port, ("x"):rep(9001), N_FLOOD, heard)
    N.close(h)
    assert.same({ 1, N_FLOOD - 1 }, { count(lines, "mdns: packet dropped:") })
    assert.same({ 1, N_FLOOD - 1 }, { count(lines, "mdns: datagram over") })
    assert.is_true(#lines < 20, "lines: " .. #lines)
  end)

  it("of a stranger whose key shares the logged prefix do not hold back another's line", function()
    local port = N.free_udp_port()
    local h, lines = logged_host { discovery = true, announce_port = port, announce_v6 = false,
      broadcast = "127.255.255.255", announce_interval = 60000, log_window = 60000 }
    local real = N.keys():public()
    local squatter = real:sub(1, 8) .. N.keys():public():sub(9)
    local prefix = real:sub(1, 8):gsub(".", function(c) return ("%02x"):format(c:byte()) end)
    for _, key in ipairs { squatter, real } do
      local before = stats(h).announces_in
      N.udp_send(port, { peernet.announce.encode(4041, key) })
      assert(N.wait(function() return stats(h).announces_in > before end))
    end
    assert.same({ 2, 0 }, { count(lines, "untrusted peer " .. prefix) })
    N.close(h)
  end)
end)

-- A TCP listener that counts who dials it and hangs up on them.
local function trap()
  local t = { dials = 0, tcp = uv.new_tcp() }
  assert(t.tcp:bind("127.0.0.1", 0))
  t.tcp:listen(64, function()
    local c = uv.new_tcp()
    t.tcp:accept(c)
    t.dials = t.dials + 1
    c:close()
  end)
  t.port = t.tcp:getsockname().port
  return t
end

describe("a forged announce for a trusted key", function()
  it("does not displace the trust list's address: the host still reaches the real peer", function()
    local aport = N.free_udp_port()
    local ka, kb = N.keys(), N.keys()
    -- b's port, free until b comes back on it.
    local bport = N.free_tcp_port()
    local forger = trap()
    local a = N.host(ka, { discovery = true, announce_port = aport, broadcast = "127.255.255.255",
      announce_v6 = false, announce_interval = 60000, backoff_min = 20, backoff_max = 3000 })
    a:trust(kb:public_hex(), "127.0.0.1:" .. bport)
    local forged = peernet.announce.encode(forger.port, kb:public())
    -- Forge while the real peer is down: the forger gets a dial once.
    for _ = 1, 10 do
      local before = stats(a).announces_in
      N.udp_send(aport, { forged })
      assert(N.wait(function() return stats(a).announces_in > before end))
    end
    assert(N.wait(function() return forger.dials >= 1 end))
    local b = N.host(kb, { listen = "127.0.0.1:" .. bport, trust = { ka:public_hex() } })
    b:expose("echo", function(_, v) return v end)
    assert(N.wait(function() return a:peer(kb:public_hex()).status == "connected" end),
      "never reached the real peer at its configured address")
    assert.same({ true, "real" }, { N.call(a, kb:public_hex(), "echo", "real") })
    assert.equal("127.0.0.1:" .. bport, a:peer(kb:public_hex()).addr)
    -- More forging while connected changes nothing.
    for _ = 1, 10 do
      local before = stats(a).announces_in
      N.udp_send(aport, { forged })
      assert(N.wait(function() return stats(a).announces_in > before end))
    end
    assert.equal("127.0.0.1:" .. bport, a:peer(kb:public_hex()).addr)
    assert.equal("connected", a:peer(kb:public_hex()).status)
    -- Twenty announces, not twenty dials: the forger's address is skipped
    -- after each failure, twice as long each time (from backoff_min), and
    -- that was logged (one line: the rest are counted).
    assert.is_true(forger.dials <= 3, "dials to the forger: " .. forger.dials)
    assert.equal(1, #log_lines("discovered address 127.0.0.1:" .. forger.port .. " skipped"))
    forger.tcp:close()
    N.close(a, b)
  end)

  it("with a fresh port each does not push out the address a handshake proved", function()
    local aport = N.free_udp_port()
    local ka, kb = N.keys(), N.keys()
    local bport = N.free_tcp_port() -- b comes back on it
    local b = N.host(kb, { listen = "127.0.0.1:" .. bport, trust = { ka:public_hex() } })
    local a = N.host(ka, { discovery = true, announce_port = aport, broadcast = "127.255.255.255",
      announce_v6 = false, announce_interval = 60000, backoff_min = 20, backoff_max = 200 })
    a:trust(kb:public_hex()) -- no configured address: discovery is all a has
    N.udp_send(aport, { peernet.announce.encode(bport, kb:public()) })
    assert(N.wait(function() return a:peer(kb:public_hex()).status == "connected" end))
    -- The real peer goes away; a forger announces its key at a new port
    -- with every datagram (traps that count the dials and hang up).
    N.close(b)
    assert(N.wait(function() return a:peer(kb:public_hex()).status ~= "connected" end))
    local traps = {}
    for i = 1, 40 do traps[i] = trap() end
    local sent = 0
    local function forge(n)
      local batch = {}
      for _ = 1, n do
        sent = sent + 1
        batch[#batch + 1] = peernet.announce.encode(traps[sent % #traps + 1].port, kb:public())
      end
      local before = stats(a).announces_in
      N.udp_send(aport, batch)
      assert(N.wait(function() return stats(a).announces_in >= before + n end))
    end
    local function trap_dials()
      local n = 0
      for _, t in ipairs(traps) do n = n + t.dials end
      return n
    end
    forge(8) -- more than the host keeps of a peer's addresses
    -- The real peer is back at its address, and announces nothing; the
    -- forging goes on until a reaches it or has dialled the forger 60 times.
    b = N.host(kb, { listen = "127.0.0.1:" .. bport, trust = { ka:public_hex() } })
    b:expose("echo", function(_, v) return v end)
    while a:peer(kb:public_hex()).status ~= "connected" and trap_dials() < 60 do forge(4) end
    assert.equal("connected", a:peer(kb:public_hex()).status,
      "dials to the forger: " .. trap_dials() .. ", forged announces: " .. sent)
    assert.same({ true, "real" }, { N.call(a, kb:public_hex(), "echo", "real") })
    assert.equal("127.0.0.1:" .. bport, a:peer(kb:public_hex()).addr)
    for _, t in ipairs(traps) do t.tcp:close() end
    N.close(a, b)
  end)

  it("skips a discovered address that answers with another key, and keeps the configured one", function()
    local aport = N.free_udp_port()
    local ka, kb, kx = N.keys(), N.keys(), N.keys()
    local b = N.host(kb, { trust = { ka:public_hex() } })
    local x = N.host(kx, { trust = { ka:public_hex() } }) -- a real host, another key
    local a = N.host(ka, { discovery = true, announce_port = aport, broadcast = "127.255.255.255",
      announce_v6 = false, announce_interval = 60000, backoff_min = 20, backoff_max = 200 })
    a:trust(kb:public_hex()) -- no configured address: discovery is all a has
    N.udp_send(aport, { peernet.announce.encode(x:port(), kb:public()) })
    assert(N.wait(function() return #log_lines("discovered address " .. N.addr(x) .. " skipped") == 1 end))
    assert.matches("wrong key", log_lines("discovered address " .. N.addr(x) .. " skipped")[1])
    -- The true announce is then dialled, and the link holds.
    N.udp_send(aport, { peernet.announce.encode(b:port(), kb:public()) })
    assert(N.wait(function() return a:peer(kb:public_hex()).status == "connected" end))
    assert.equal(N.addr(b), a:peer(kb:public_hex()).addr)
    local xa, before = stats(x).accepted, stats(a).announces_in
    N.udp_send(aport, { peernet.announce.encode(x:port(), kb:public()) })
    assert(N.wait(function() return stats(a).announces_in > before end))
    assert.equal(xa, stats(x).accepted)
    assert.equal(N.addr(b), a:peer(kb:public_hex()).addr)
    N.close(a, b, x)
  end)
end)
