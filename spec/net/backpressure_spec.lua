-- Backpressure: a send above the high-water mark (half of max_outbuf)
-- answers nil, "busy", "local" and the link stays up; the "drained" event
-- (h:on) and peernet.drain (scripts) say when to go on. Real hosts on
-- 127.0.0.1; a raw peer that stops reading is the slow reader.
local peernet = require "peernet"
local N = require "support.net"
local etf, env = peernet.etf, peernet.envelope

local OPTS = { frame_cap = 4096, max_outbuf = 16384 }
local BIG = string.rep("z", 3000)

-- b serves with OPTS (and extra); kr is a raw peer, handshaken, that does
-- not read.
local function slow_reader(extra)
  local kb, kr = N.keys(), N.keys()
  local o = { trust = { kr:public_hex() } }
  for k, v in pairs(OPTS) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  local b = N.host(kb, o)
  local raw = N.raw(b:port())
  raw:handshake(kr:secret())
  raw.tcp:read_stop()
  assert(N.wait(function() return (b:peer(kr:public_hex()) or {}).status == "connected" end))
  return b, raw, kr:public_hex(), kr
end

-- Sends BIG until the host refuses; the loop runs now and then, so the
-- kernel's socket buffers fill first. Returns what the refusal said.
local function send_until_refused(send)
  for i = 1, 100000 do
    local res = table.pack(send())
    if not res[1] then return res end
    if i % 20 == 0 then require("luv").run("nowait") end
  end
  error("never refused")
end

-- Fills b's queue to kr and the kernel's buffers under it: rounds of
-- sends until busy, each waiting for "drained"; a round that hears none
-- (an absence check, like N.spin) means the peer's socket takes no more.
-- Returns the busy answer of the last round.
local function fill(b, kr)
  local drained = 0
  b:on("drained", function() drained = drained + 1 end)
  local res
  for _ = 1, 10000 do
    local before = drained
    res = send_until_refused(function() return b:send(kr, "x", BIG) end)
    if not N.wait(function() return drained > before end, 100) then break end
  end
  b:on("drained", nil)
  return res
end

local function read_again(raw)
  raw.tcp:read_start(function(err, data)
    if err or not data then raw.eof = true end
  end)
end

describe("h:send backpressure", function()
  it("answers busy above the mark, keeps the link, and says drained once the peer reads", function()
    local b, raw, kr = slow_reader()
    local res = fill(b, kr)
    local drained = {}
    b:on("drained", function(k) drained[#drained + 1] = k end)
    assert.same({ n = 3, nil, "busy", "local" }, res)
    assert.equal(peernet.reasons.busy, "busy")
    assert.equal("connected", b:peer(kr).status)
    assert.is_nil(N.logged("not reading"))
    assert.same({}, drained)
    read_again(raw)
    assert.is_true(N.wait(function() return #drained == 1 end))
    assert.same({ kr }, drained)
    assert.is_true(b:send(kr, "x", BIG))
    assert.equal("connected", b:peer(kr).status)
    raw:close()
    N.close(b)
  end)
end)

describe("peernet.drain", function()
  it("waits until the peer reads, and answers true at once when not busy", function()
    local b, raw, kr = slow_reader()
    local rt = peernet.runtime.new(b, {})
    local p = rt:api()
    local first, got
    rt:spawn(function() first = table.pack(p.drain(kr)) end)
    assert.same({ n = 1, true }, first) -- not busy: at once
    fill(b, kr)
    rt:spawn(function()
      local refused = table.pack(p.send(kr, "x", BIG))
      got = { refused, table.pack(p.drain(kr)) }
    end)
    N.spin(50) -- the task waits in drain: the peer reads nothing
    assert.is_nil(got)
    assert.equal("connected", b:peer(kr).status)
    read_again(raw)
    assert.is_true(N.wait(function() return got end))
    assert.same({ n = 3, nil, "busy", "local" }, got[1])
    assert.same({ n = 1, true }, got[2])
    assert.equal("connected", b:peer(kr).status)
    rt:close()
    raw:close()
    N.close(b)
  end)

  it("answers closed when the link goes while it waits", function()
    local b, raw, kr = slow_reader()
    local rt = peernet.runtime.new(b, {})
    local p = rt:api()
    local got
    fill(b, kr)
    rt:spawn(function() got = table.pack(p.drain(kr)) end)
    assert.is_nil(got)
    raw:close()
    assert.is_true(N.wait(function() return got end))
    assert.same({ n = 3, nil, "closed", "closed" }, got)
    rt:close()
    N.close(b)
  end)

  for _, case in ipairs {
    { "", OPTS, { BIG } },
    -- Frames near half of max_outbuf: busy comes from the limit while the
    -- queue is under the mark (the drain must still wait, not spin).
    { " (max_outbuf under two frames)", { frame_cap = 65536, max_outbuf = 65540 },
      { string.rep("a", 26000), string.rep("b", 40000) } },
  } do
  it("lets a script sending in a loop deliver everything without dropping its link" .. case[1], function()
    local a, b, ka = N.pair(nil, case[2])
    local items = case[3]
    local heard = 0
    a:expose("count", function() heard = heard + 1 end)
    local rt = peernet.runtime.new(b, {})
    local p = rt:api()
    -- Queued frames go straight to the socket while the kernel takes them,
    -- so busy comes only once its buffers are full (their size is the
    -- machine's): send until the first busy, then COUNT more.
    local COUNT, MAX, busy, sent, done = 300, 100000, 0, 0, false
    rt:spawn(function()
      local last = MAX
      while sent < last do
        sent = sent + 1
        while true do
          local ok, why = p.send(ka:public_hex(), "count", items[sent % #items + 1])
          if ok then break end
          assert(why == "busy", why)
          busy = busy + 1
          last = math.min(last, sent + COUNT)
          assert(p.drain(ka:public_hex()))
        end
      end
      done = true
    end)
    assert.is_true(N.wait(function() return done and heard == sent end))
    assert.is_true(busy > 0)
    assert.equal("connected", b:peer(ka:public_hex()).status)
    assert.is_nil(N.logged("not reading"))
    rt:close()
    N.close(a, b)
  end)
  end
end)

describe("max_outbuf", function()
  -- Calls of our own until one is refused (calls do not look at the send
  -- mark): the queue is then within a frame of max_outbuf.
  local function call_until_refused(b, kr)
    return send_until_refused(function() return b:call(kr, "x", BIG, function() end) end)
  end

  it("refuses our own calls past it with busy and keeps the link, and queues the peer's answers up to twice it", function()
    local b, raw, kr = slow_reader()
    b:expose("echo", function(_, v) return v end)
    fill(b, kr)
    assert.same({ n = 3, nil, "busy", "local" }, call_until_refused(b, kr))
    assert.equal("connected", b:peer(kr).status)
    -- The peer's calls are answered although our queue is at max_outbuf:
    -- four replies of BIG stay under twice it.
    local out = b:stats().frames_out
    for id = 1, 4 do raw:send_env(env.call(id, "echo", etf.encode(BIG):sub(2))) end
    assert.is_true(N.wait(function() return b:stats().frames_out == out + 4 end))
    assert.equal("connected", b:peer(kr).status)
    assert.is_nil(N.logged("not reading"))
    -- Once it reads again it gets every answer, after what was queued before.
    raw.tcp:read_start(function(err, data)
      if err or not data then raw.eof = true return end
      raw.inbox = raw.inbox .. data
    end)
    local replies = {}
    while #replies < 4 do
      local e = raw:recv_env()
      if e.kind == "reply" then replies[#replies + 1] = { e.id, e.ok, etf.decode("\131" .. e.term) } end
    end
    for id = 1, 4 do assert.same({ id, true, BIG }, replies[id]) end
    assert.equal("connected", b:peer(kr).status)
    raw:close()
    N.close(b)
  end)

  it("arms drained with a call refused busy, as with a send", function()
    local b, raw, kr = slow_reader()
    local drained = 0
    b:on("drained", function() drained = drained + 1 end)
    assert.same({ n = 3, nil, "busy", "local" }, call_until_refused(b, kr))
    read_again(raw)
    assert.is_true(N.wait(function() return drained == 1 end))
    assert.is_true(b:send(kr, "x", BIG))
    raw:close()
    N.close(b)
  end)

  it("closes the link when the peer's unread answers pass twice it", function()
    local b, raw, kr = slow_reader()
    b:expose("echo", function(_, v) return v end)
    local down
    b:on("disconnected", function(_, why) down = why end)
    fill(b, kr)
    call_until_refused(b, kr)
    for id = 1, 12 do raw:send_env(env.call(id, "echo", etf.encode(BIG):sub(2))) end
    assert.is_true(N.wait(function() return down end))
    assert.matches("peer is not reading: %d+ bytes queued %(twice max_outbuf, 32768%)", down)
    raw:close()
    N.close(b)
  end)

  it("tells a sender waiting to go on once its busy link is replaced by the peer's new one", function()
    local b, raw, kr, krk = slow_reader()
    fill(b, kr)
    local drained = {}
    b:on("drained", function(k) drained[#drained + 1] = k end)
    local new = N.raw(b:port())
    new:handshake(krk:secret())
    assert.is_true(N.wait(function() return #drained == 1 end))
    assert.same({ kr }, drained)
    assert.is_true(b:send(kr, "x", "on the new link"))
    assert.equal("send", new:recv_env().kind)
    raw:close()
    new:close()
    N.close(b)
  end)
end)

describe("stall_timeout", function()
  it("drops a peer that reads nothing of a write for stall_timeout, and says so", function()
    local b, raw, kr = slow_reader { stall_timeout = 300 }
    local down
    b:on("disconnected", function(_, why) down = why end)
    fill(b, kr) -- the kernel's buffers are full: a write waits on the peer
    assert.is_true(N.wait(function() return down end))
    assert.matches("peer read nothing for 300 ms %(stall_timeout%): %d+ bytes queued", down)
    assert.equal(1, b:stats().stalled)
    raw:close()
    N.close(b)
  end)
end)

describe("sends a handler script has not caught up with", function()
  it("pause reading the sender's link instead of being dropped: every send arrives", function()
    local a, b, ka, kb = N.pair()
    local dir = H.tmpdir()
    H.replace_file(dir .. "/note.lua", [[
      local n = 0
      peernet.expose("note", function()
        for _ = 1, 3000 do end -- slower than the sender: its queue of sends grows
        n = n + 1
      end)
      peernet.expose("count", function() return n end)
    ]])
    local rt = assert(peernet.runtime.new(a, {}))
    finally(function()
      rt:close()
      N.close(a, b)
      H.rmdir(dir)
    end)
    assert(rt:load_dir(dir))
    local COUNT, busy = 20000, 0
    local drained = false
    b:on("drained", function() drained = true end)
    local sent = 0
    while sent < COUNT do
      local ok, why = b:send(ka:public_hex(), "note", sent)
      if ok then
        sent = sent + 1 -- all in one loop turn: far faster than the script
      else
        assert.equal("busy", why)
        busy = busy + 1
        drained = false
        assert(N.wait(function() return drained end))
      end
    end
    local heard
    assert.is_true(N.wait(function()
      heard = select(2, N.call(b, ka:public_hex(), "count"))
      return heard and heard + a:stats().sends_dropped == COUNT
    end, 60000))
    assert.equal(0, a:stats().sends_dropped)
    assert.equal(COUNT, heard)
    assert.equal("connected", b:peer(ka:public_hex()).status)
  end)

  -- A handler script on a, sent to by b (max_calls_in_flight as given);
  -- returns a, b, ka and what cleans up.
  local function script_receiver(text, opts_a)
    local a, b, ka = N.pair(opts_a)
    local dir = H.tmpdir()
    H.replace_file(dir .. "/h.lua", text)
    local rt = assert(peernet.runtime.new(a, {}))
    assert(rt:load_dir(dir))
    return a, b, ka, function()
      rt:close()
      N.close(a, b)
      H.rmdir(dir)
    end
  end

  -- Sends COUNT as b's loop does, waiting for drained when busy.
  local function send_all(b, key, count)
    local drained = false
    b:on("drained", function() drained = true end)
    local sent = 0
    while sent < count do
      if b:send(key, "note", sent) then
        sent = sent + 1
      else
        drained = false
        assert(N.wait(function() return drained end))
      end
    end
  end

  it("hold the rest of a read while paused, so a small bound drops nothing either", function()
    local a, b, ka, done = script_receiver([[
      local n = 0
      peernet.expose("note", function() for _ = 1, 3000 do end n = n + 1 end)
      peernet.expose("count", function() return n end)
    ]], { max_calls_in_flight = 256 })
    finally(done)
    send_all(b, ka:public_hex(), 20000)
    local heard
    assert.is_true(N.wait(function()
      heard = select(2, N.call(b, ka:public_hex(), "count"))
      return heard and heard + a:stats().sends_dropped == 20000
    end, 60000))
    assert.same({ 0, 20000 }, { a:stats().sends_dropped, heard })
  end)

  it("do not pause a link a handler waits on for its reply: a handler calling the sender back", function()
    local a, b, ka, done = script_receiver([[
      local ok, failed = 0, 0
      peernet.expose("note", function(from, n)
        if peernet.call(from, "ack", n) then ok = ok + 1 else failed = failed + 1 end
      end)
      peernet.expose("count", function() return { ok, failed } end)
    ]])
    finally(done)
    b:expose("ack", function() return true end)
    send_all(b, ka:public_hex(), 3000)
    local got
    assert.is_true(N.wait(function()
      got = select(2, N.call(b, ka:public_hex(), "count"))
      return got and got[1] + got[2] == 3000
    end, 60000))
    assert.same({ 3000, 0 }, got)
  end)

  it("pause for a bounded time: a peer that goes silent behind a stuck handler is still found dead", function()
    local ka, kr = N.keys(), N.keys()
    local a = N.host(ka, { trust = { kr:public_hex() }, ping_interval = 200, ping_timeout = 500 })
    local dir = H.tmpdir()
    H.replace_file(dir .. "/slow.lua", "peernet.expose('note', function() peernet.sleep(86400000) end)")
    local rt = assert(peernet.runtime.new(a, {}))
    local raw
    finally(function()
      if raw then raw:close() end
      rt:close()
      N.close(a)
      H.rmdir(dir)
    end)
    assert(rt:load_dir(dir))
    raw = N.raw(a:port())
    raw:handshake(kr:secret())
    assert(N.wait(function() return (a:peer(kr:public_hex()) or {}).status == "connected" end))
    local down
    a:on("disconnected", function(_, why) down = why end)
    for _ = 1, 2100 do raw:send_env(env.send("note", etf.encode(1):sub(2))) end
    raw.tcp:read_stop() -- the peer hangs: no pong, no close
    assert.is_true(N.wait(function() return down end))
    assert.matches("no pong within 500 ms", down)
  end)
end)
