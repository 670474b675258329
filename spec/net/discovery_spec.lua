-- LAN discovery (UDP announces) and network changes, on 127.0.0.1: every
-- host here listens on an announce port picked for the test and broadcasts
-- to 127.255.255.255, which the kernel delivers to every socket sharing the
-- port on this machine.
local peernet = require "peernet"
local uv = require "luv"
local N = require "support.net"

local function disc(port, extra)
  local o = { discovery = true, announce_port = port, broadcast = "127.255.255.255",
              announce_v6 = false, announce_interval = 1000 } -- the least allowed
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- Sends datagrams as a stranger would, to the announce port.
local function announce(port, key) return peernet.announce.encode(port, key) end

describe("LAN discovery", function()
  it("dials a trusted peer at the address its announce gives, then calls work", function()
    local port = N.free_udp_port()
    local ka, kb = N.keys(), N.keys()
    local a = N.host(ka, disc(port, { trust = { kb:public_hex() } }))
    local seen = {}
    a:on("discovered", function(key) seen[#seen + 1] = key end)
    local b = N.host(kb, disc(port, { trust = { ka:public_hex() } }))
    b:expose("echo", function(_, x) return x end)
    assert(N.wait(function() return (a:peer(kb:public_hex()) or {}).status == "connected" end))
    local p = a:peer(kb:public_hex())
    assert.are.equal("127.0.0.1:" .. b:port(), p.addr)
    assert.is_true(p.trusted)
    assert.are.equal(kb:public_hex(), seen[1])
    local ok, v = N.call(a, kb:public_hex(), "echo", { "hi" })
    assert.is_true(ok)
    assert.are.same({ "hi" }, v)
    N.close(a, b)
  end)

  it("records an untrusted peer as discovered, reports it, and does not dial it", function()
    local port = N.free_udp_port()
    local ka, kb = N.keys(), N.keys()
    local a = N.host(ka, disc(port))
    local seen
    a:on("discovered", function(key) seen = key end)
    local b = N.host(kb, disc(port, { trust = { ka:public_hex() } }))
    assert(N.wait(function() return seen end))
    assert.are.equal(kb:public_hex(), seen)
    -- several announces later, still no connection
    local n0 = a:stats().announces_in
    assert(N.wait(function() return a:stats().announces_in >= n0 + 3 end))
    local p = a:peer(kb:public_hex())
    assert.are.equal("discovered", p.status)
    assert.is_false(p.trusted)
    assert.are.equal("127.0.0.1:" .. b:port(), p.addr)
    assert.are.equal(0, p.connections)
    assert.are.equal(0, b:stats().accepted)
    assert.is_true(p.last_seen > 0)
    local listed = false
    for _, q in ipairs(a:peers()) do
      if q.key == kb:public_hex() then listed = q.status == "discovered" and not q.trusted end
    end
    assert.is_true(listed)
    -- trusting it later dials the address it announced
    a:trust(kb:public_hex())
    assert(N.wait(function() return a:peer(kb:public_hex()).status == "connected" end))
    N.close(a, b)
  end)

  it("ignores its own announce", function()
    local port = N.free_udp_port()
    local a = N.host(N.keys(), disc(port))
    assert(N.wait(function() return a:stats().announces_in >= 2 end))
    local s = a:stats()
    assert.are.equal(s.announces_in, s.announces_ignored)
    assert.is_true(s.announces_sent >= 2)
    assert.are.same({}, a:peers())
    N.close(a)
  end)

  it("ignores malformed announces and keeps listening", function()
    local port = N.free_udp_port()
    local a = N.host(N.keys(), disc(port, { announce_interval = 60000 }))
    assert(N.wait(function() return a:stats().announces_in >= 1 end)) -- its own, at start
    local k = N.keys():public()
    local good = announce(4040, k)
    local bad = {
      good:sub(1, 38),                        -- short
      good .. "x",                            -- long
      "PNEX" .. good:sub(5),                  -- magic
      good:sub(1, 4) .. "\2" .. good:sub(6),  -- version
      announce(0, k),                         -- port 0: nothing to dial
      string.rep("\0", 1000),                 -- over the receive buffer
      "",
    }
    N.udp_send(port, bad)
    assert(N.wait(function() return a:stats().announces_in >= 1 + #bad end))
    local s = a:stats()
    assert.are.equal(s.announces_in, s.announces_ignored)
    assert.are.same({}, a:peers())
    N.udp_send(port, { good })
    assert(N.wait(function() return #a:peers() == 1 end))
    assert.are.equal("127.0.0.1:4040", a:peers()[1].addr)
    N.close(a)
  end)

  it("lets several hosts on one machine share the announce port", function()
    local port = N.free_udp_port()
    local a = N.host(N.keys(), disc(port, { announce_interval = 60000 }))
    local b = N.host(N.keys(), disc(port, { announce_interval = 60000 }))
    local k = N.keys()
    N.udp_send(port, { announce(5555, k:public()) }, "127.255.255.255")
    assert(N.wait(function() return a:peer(k:public_hex()) and b:peer(k:public_hex()) end))
    assert.are.equal("discovered", a:peer(k:public_hex()).status)
    assert.are.equal("discovered", b:peer(k:public_hex()).status)
    -- and each heard the other's start-up announce or the broadcast above
    N.close(a, b)
  end)

  it("remembers at most 256 untrusted keys from announces, forgetting the stalest", function()
    local port = N.free_udp_port()
    local a = N.host(N.keys(), disc(port, { announce_interval = 60000 }))
    assert(N.wait(function() return a:stats().announces_in >= 1 end))
    local keys = {}
    for i = 1, 300 do keys[i] = N.keys() end
    for from = 1, 300, 50 do -- in steps, so the socket buffer never overflows
      local batch = {}
      for i = from, from + 49 do batch[#batch + 1] = announce(1000 + i, keys[i]:public()) end
      local before = a:stats().announces_in
      N.udp_send(port, batch)
      assert(N.wait(function() return a:stats().announces_in >= before + 50 end))
    end
    assert.are.equal(256, #a:peers())
    assert.is_nil(a:peer(keys[1]:public_hex()))
    assert.is_nil(a:peer(keys[44]:public_hex()))
    assert.are.equal("127.0.0.1:1045", a:peer(keys[45]:public_hex()).addr)
    assert.are.equal("discovered", a:peer(keys[300]:public_hex()).status)
    -- a trusted key leaves the strangers (one slot free) and is never forgotten
    a:trust(keys[45]:public_hex())
    local before = a:stats().announces_in
    N.udp_send(port, { announce(9, N.keys():public()), announce(9, N.keys():public()) })
    assert(N.wait(function() return a:stats().announces_in >= before + 2 end))
    assert.are.equal(257, #a:peers())
    assert.is_true(a:peer(keys[45]:public_hex()).trusted)
    assert.is_nil(a:peer(keys[46]:public_hex()))
    N.close(a)
  end)

  it("is off unless asked for in host.new", function()
    local a = N.host(N.keys())
    assert.are.equal(0, a:stats().announces_sent)
    N.close(a)
  end)

  it("refuses an announce_interval under a second: every host of the LAN hears each one", function()
    local h, err = peernet.host.new { secret = N.keys():secret(), listen = "127.0.0.1:0",
      discovery = true, announce_interval = 999 }
    assert.is_nil(h)
    assert.equal("announce_interval: must be 1000..86400000 ms, got 999", err)
  end)

  it("refuses a broadcast setting that is not an IPv4 address", function()
    local h, err = peernet.host.new { secret = N.keys():secret(), listen = "127.0.0.1:0",
      discovery = true, broadcast = "everyone" }
    assert.is_nil(h)
    assert.matches("broadcast", err)
  end)
end)

describe("network changes", function()
  it("keep a healthy link: same connection, no disconnected event", function()
    -- A probe deadline short enough to wait out, long enough for a pong on
    -- a busy machine.
    local PROBE = 1000
    local a, b, _, kb = N.pair({ probe_timeout = PROBE })
    b:expose("echo", function(_, x) return x end)
    local gone = 0
    a:on("disconnected", function() gone = gone + 1 end)
    local accepted = b:stats().accepted
    a:network_changed()
    assert.are.equal(1, a:stats().network_changes)
    -- the reply comes after the pong to the probe, on the same link
    local ok = N.call(a, kb:public_hex(), "echo", 1)
    assert.is_true(ok)
    -- The pong answered the probe: a second network change may probe the
    -- link again (one probe out at a time), and queues its ping at once.
    local frames = a:stats().frames_out
    a:network_changed()
    assert.are.equal(frames + 1, a:stats().frames_out)
    assert.is_true((N.call(a, kb:public_hex(), "echo", 1)))
    -- Sentinel: a loop timer started after the second probe fires after
    -- its deadline would have (the loop runs due timers in order).
    N.spin(PROBE)
    assert.are.equal(0, gone)
    assert.are.equal(0, a:stats().probes_failed)
    assert.are.equal(accepted, b:stats().accepted)
    assert.are.equal(1, a:stats().connections)
    assert.is_true((N.call(a, kb:public_hex(), "echo", 2)))
    N.close(a, b)
  end)

  it("close a link whose peer stopped answering within the probe deadline, and redial",
    function()
      local ka, kr = N.keys(), N.keys()
      local a = N.host(ka, { probe_timeout = 300, backoff_min = 50, backoff_max = 100,
        trust = { kr:public_hex() } })
      -- where a will redial: a listener that counts who comes
      local dials = 0
      local server = uv.new_tcp()
      assert(server:bind("127.0.0.1", 0))
      server:listen(16, function()
        local c = uv.new_tcp()
        server:accept(c)
        dials = dials + 1
        c:close()
      end)
      local raw = N.raw(a:port())
      raw:handshake(kr:secret()) -- a live link from a peer that never pongs
      assert(N.wait(function() return (a:peer(kr:public_hex()) or {}).status == "connected" end))
      a:trust(kr:public_hex(), "127.0.0.1:" .. server:getsockname().port)
      local gone
      a:on("disconnected", function(key) gone = key end)
      a:network_changed()
      assert(N.wait(function() return gone end))
      assert.are.equal(kr:public_hex(), gone)
      assert.are.equal(1, a:stats().probes_failed)
      local found = false
      for _, l in ipairs(N.logs) do found = found or l:find("of a probe", 1, true) ~= nil end
      assert.is_true(found)
      assert(N.wait(function() return dials >= 1 end), "no redial after the probe failed")
      raw:close()
      server:close()
      N.close(a)
    end)
end)
