-- mDNS / DNS-SD: the message parser and builder (peernet.mdns), hosts that
-- advertise and browse `_peernet._tcp.local` over real multicast, and the
-- same checked against an independent implementation (python3-zeroconf).
local peernet = require "peernet"
local uv = require "luv"
local N = require "support.net"
local D = require "support.dns_nasty"
local mdns = peernet.mdns

local SVC = "_peernet._tcp.local"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function corpus(name) return read(H.source_dir .. "/fuzz/corpus/mdns/" .. name) end

local function find(records, t, name)
  for _, r in ipairs(records) do
    if r.type == t and (not name or r.name == name) then return r end
  end
end

-- An interface that is up and multicast-capable (IFF_UP 0x1, IFF_MULTICAST
-- 0x1000), or nil and why not.
local function multicast_interface()
  local p = io.popen("for f in /sys/class/net/*/flags; do echo $f $(cat $f); done 2>/dev/null")
  local out = p:read("a")
  p:close()
  for path, flags in out:gmatch("(%S+) (0x%x+)") do
    local v = tonumber(flags)
    if v & 0x1 ~= 0 and v & 0x1000 ~= 0 then return path:match("net/([^/]+)/flags") end
  end
  return nil, "no network interface is up with the MULTICAST flag"
end

-- A port of our own for the hosts of one spec: specs of other builds may run
-- at the same time on this machine, and port 5353 belongs to system responders.
local function spec_port() return 20000 + math.random(0, 30000) end
math.randomseed(os.time() + math.floor(os.clock() * 1e6))

describe("peernet.mdns messages", function()
  it("builds and parses a DNS-SD announcement", function()
    local bytes = assert(mdns.build {
      id = 0, flags = 0x8400,
      records = {
        { name = SVC, type = "PTR", ttl = 4500, target = "My\\.Box ü._peernet._tcp.local" },
        { name = "My\\.Box ü._peernet._tcp.local", type = "SRV", flush = true, port = 4040,
          target = "pn-1.local" },
        { name = "My\\.Box ü._peernet._tcp.local", type = "TXT", flush = true, ttl = 4500,
          txt = { "v=1", "key=ab" } },
        { name = "pn-1.local", type = "A", flush = true, addr = "192.0.2.7", section = "additional" },
        { name = "pn-1.local", type = "AAAA", flush = true, addr = "fd00::7", section = "additional" },
      },
    })
    local m = assert(mdns.parse(bytes))
    assert.equal(0x8400, m.flags)
    local ptr, srv = find(m.records, "PTR"), find(m.records, "SRV")
    assert.equal("My\\.Box ü._peernet._tcp.local", ptr.target)
    assert.is_false(ptr.flush) -- shared record: no cache-flush bit
    assert.same({ 4040, "pn-1.local", true, 120 }, { srv.port, srv.target, srv.flush, srv.ttl })
    assert.same({ "v=1", "key=ab" }, find(m.records, "TXT").txt)
    assert.same({ "192.0.2.7", "additional" }, { find(m.records, "A").addr, find(m.records, "A").section })
    assert.equal("fd00::7", find(m.records, "AAAA").addr)
  end)

  it("refuses labels over 63 bytes and names over 255 when building", function()
    local long = string.rep("x", 64)
    assert.has_error(function() mdns.build { questions = { { name = long .. ".local", type = "PTR" } } } end)
    local name = string.rep(string.rep("y", 63) .. ".", 4) .. "local"
    assert.has_error(function() mdns.build { questions = { { name = name, type = "A" } } } end)
    assert.truthy(mdns.build { questions = { { name = string.rep("z", 63) .. ".local", type = "A" } } })
  end)

  it("parses what python-zeroconf sends: announcement, answer with NSEC, goodbye", function()
    local m = assert(mdns.parse(corpus("zeroconf_announce")))
    local srv = find(m.records, "SRV")
    assert.equal("Zeroconf Peer._peernet._tcp.local", srv.name)
    assert.equal(4040, srv.port)
    assert.equal("v=1", find(m.records, "TXT").txt[1] == "v=1" and "v=1" or find(m.records, "TXT").txt[2])
    m = assert(mdns.parse(corpus("zeroconf_answer_nsec")))
    assert.equal("additional", find(m.records, "NSEC").section)
    m = assert(mdns.parse(corpus("zeroconf_goodbye")))
    for _, r in ipairs(m.records) do assert.equal(0, r.ttl) end
    m = assert(mdns.parse(corpus("zeroconf_query_known_answers")))
    assert.equal(SVC, m.questions[1].name)
    assert.equal("PTR", find(m.records, "PTR").type)
  end)

  it("follows compression pointers and refuses loops, forward pointers and long chains", function()
    for _, c in ipairs(D.cases) do
      local m, err, _, code = mdns.parse(c[2])
      if c[3] then
        assert.is_nil(m, c[1])
        assert.equal(c[3], code, c[1] .. ": " .. tostring(err))
      else
        assert.truthy(m, c[1] .. ": " .. tostring(err))
      end
    end
    local m = assert(mdns.parse(D.cases[1][2])) -- compressed_ok
    assert.equal("inst." .. SVC, m.records[1].target)
    assert.equal("end", assert(mdns.parse(D.chain(16))).records[2].name)
  end)
end)

-- Runs /usr/bin/python3 spec/support/zeroconf_peer.py ARGS...; lines printed
-- pile up in .lines.
local function zeroconf(...)
  local self = { lines = {}, buf = "" }
  self.stdin, self.stdout = uv.new_pipe(), uv.new_pipe()
  self.proc = uv.spawn("/usr/bin/python3", {
    args = { H.source_dir .. "/spec/support/zeroconf_peer.py", ... },
    stdio = { self.stdin, self.stdout, 2 },
  }, function() self.exited = true end)
  assert(self.proc, "cannot start /usr/bin/python3")
  self.stdout:read_start(function(_, data)
    if not data then return end
    self.buf = self.buf .. data
    for line in self.buf:gmatch("([^\n]*)\n") do self.lines[#self.lines + 1] = line end
    self.buf = self.buf:match("[^\n]*$")
  end)
  function self.saw(text)
    for _, l in ipairs(self.lines) do
      if l:find(text, 1, true) then return l end
    end
  end
  function self.stop()
    if not self.exited then self.proc:kill("sigterm") end
    N.wait(function() return self.exited end, 5000)
    for _, h in ipairs { self.stdin, self.stdout, self.proc } do
      if not h:is_closing() then h:close() end
    end
  end
  return self
end

describe("mDNS on a host", function()
  local hosts
  before_each(function() hosts = {} end)
  after_each(function() N.close(table.unpack(hosts)) end)
  local function host(kp, opts)
    local h = N.host(kp, opts)
    hosts[#hosts + 1] = h
    return h
  end

  -- A plain DNS client asking from its own port (RFC 6762 §6.7 legacy
  -- unicast): returns the parsed answer.
  local function ask(port, question)
    local udp = uv.new_udp()
    local answer
    udp:bind("127.0.0.1", 0)
    udp:recv_start(function(_, data) if data then answer = data end end)
    udp:send(assert(mdns.build { id = 4242, questions = { question } }), "127.0.0.1", port)
    N.wait(function() return answer end, 5000)
    udp:close()
    return answer and assert(mdns.parse(answer))
  end

  it("answers a unicast query with its port and key, TTLs capped at 10 s", function()
    local port, kp = spec_port(), N.keys()
    local h = host(kp, { mdns = true, mdns_port = port, mdns_instance = "Kitchen Pi" })
    local m = ask(port, { name = SVC, type = "PTR" })
    assert.truthy(m, "no answer to a unicast query")
    assert.equal(4242, m.id)
    assert.equal(SVC, m.questions[1].name)
    assert.equal("Kitchen Pi." .. SVC, find(m.records, "PTR", SVC).target)
    local srv = find(m.records, "SRV", "Kitchen Pi." .. SVC)
    assert.equal(h:port(), srv.port)
    assert.same({ "v=1", "key=" .. kp:public_hex() }, find(m.records, "TXT").txt)
    assert.truthy(find(m.records, "A", srv.target))
    for _, r in ipairs(m.records) do assert.is_true(r.ttl <= 10 and r.ttl > 0) end
  end)

  it("does not answer a query that already knows its PTR (known-answer suppression)", function()
    local port = spec_port()
    local h = host(N.keys(), { mdns = true, mdns_port = port, mdns_instance = "Known" })
    local udp = uv.new_udp()
    local answers = {}
    udp:bind("127.0.0.1", 0)
    udp:recv_start(function(_, data) if data then answers[#answers + 1] = assert(mdns.parse(data)) end end)
    local q = { name = SVC, type = "PTR" }
    -- Answers to direct queries leave as each query is read, in order: the
    -- first answer tells which of the two queries got one.
    udp:send(assert(mdns.build { id = 1, questions = { q }, records = {
      { name = SVC, type = "PTR", ttl = 4500, target = "Known." .. SVC } } }), "127.0.0.1", port)
    udp:send(assert(mdns.build { id = 2, questions = { q }, records = {
      { name = SVC, type = "PTR", ttl = 4500, target = "Other." .. SVC } } }), "127.0.0.1", port)
    assert.is_true(N.wait(function() return #answers > 0 end, 5000), "no answer at all")
    udp:close()
    assert.equal(2, answers[1].id)
    assert.equal(1, #answers)
    assert.truthy(h)
  end)

  it("drops malformed datagrams, counts them, and keeps answering", function()
    local port = spec_port()
    local h = host(N.keys(), { mdns = true, mdns_port = port })
    local udp = uv.new_udp()
    local bad = 0
    for _, c in ipairs(D.cases) do
      if c[3] and #c[2] > 0 then
        udp:send(c[2], "127.0.0.1", port)
        bad = bad + 1
      end
    end
    assert.is_true(N.wait(function() return h:stats().mdns_rejected >= bad end))
    udp:close()
    assert.equal(bad, h:stats().mdns_rejected)
    assert.truthy(ask(port, { name = SVC, type = "PTR" }), "no answer after malformed input")
  end)

  it("does not keep the loop alive in a weak host", function()
    local h = host(N.keys(), { mdns = true, mdns_port = spec_port(), weak = true })
    -- The watchdog does not keep the loop alive either: uv.run returns at
    -- once unless something of the host's holds it.
    local fired = false
    local t = uv.new_timer()
    t:start(10000, 0, function() fired = true; h:close() end)
    t:unref()
    uv.run()
    t:close()
    assert.is_false(fired, "the mDNS handles kept the loop running")
  end)

  it("refuses an instance name over 63 bytes", function()
    local h, err = peernet.host.new { secret = N.keys():secret(), listen = "127.0.0.1:0", mdns = true,
      mdns_port = spec_port(), mdns_instance = string.rep("n", 64) }
    assert.is_nil(h)
    assert.matches("1%.%.63 bytes", err)
  end)

  it("lets hosts find each other: trusted ones connect, untrusted ones are only seen", function()
    local iface, why = multicast_interface()
    if not iface then return pending(why) end
    local port = spec_port()
    local ka, kb, kc = N.keys(), N.keys(), N.keys()
    -- No addresses anywhere: only mDNS can tell b and c where a is.
    local a = host(ka, { mdns = true, mdns_port = port, trust = { kb:public_hex() }, listen = "0.0.0.0:0" })
    local b = host(kb, { mdns = true, mdns_port = port, trust = { ka:public_hex() } })
    local c = host(kc, { mdns = true, mdns_port = port })
    local seen = {}
    c:on("discovered", function(key) seen[#seen + 1] = key end)
    assert.is_true(N.wait(function()
      local p = b:peer(ka:public_hex())
      return p and p.status == "connected"
    end), "b never connected to a through mDNS")
    assert.is_true(N.wait(function()
      local p = c:peer(ka:public_hex())
      return p and p.status == "discovered"
    end), "c never saw a")
    local p = c:peer(ka:public_hex())
    assert.is_false(p.trusted)
    assert.matches(":" .. a:port() .. "$", p.addr)
    assert.equal(0, p.connections)
    local found = false
    for _, k in ipairs(seen) do found = found or k == ka:public_hex() end
    assert.is_true(found, "no discovered event for a")

    -- a says goodbye when it closes: c forgets the address it had learnt.
    a:close()
    assert.is_true(N.wait(function() return c:peer(ka:public_hex()).addr == "" end),
      "c kept a's address after a's goodbye")
    assert.equal("unknown", c:peer(ka:public_hex()).status)
  end)
end)

describe("mDNS browsing, packet by packet", function()
  local h, udp, other
  after_each(function()
    for _, u in ipairs { udp, other } do
      if u and not u:is_closing() then u:close() end
    end
    if h then N.close(h) end
    h, udp, other = nil, nil, nil
  end)

  it("resolves an instance heard of in pieces, asking for what is missing, and ignores other ports", function()
    local iface, why = multicast_interface()
    if not iface then return pending(why) end
    local ip
    for _, a in ipairs(uv.interface_addresses()[iface] or {}) do
      if a.family == "inet" then ip = ip or a.ip end
    end
    if not ip then return pending("interface " .. iface .. " has no IPv4 address") end
    local port = spec_port()
    h = N.host(N.keys(), { mdns = true, mdns_port = port })
    -- A responder of our own making, on the mDNS port, in the group.
    udp = uv.new_udp()
    assert(udp:bind("0.0.0.0", port, { reuseaddr = true }))
    assert(udp:set_membership("224.0.0.251", ip, "join"))
    assert(udp:set_multicast_interface(ip))
    udp:set_multicast_loop(true)
    local queries = {}
    udp:recv_start(function(_, data)
      local m = data and mdns.parse(data)
      if m and m.flags & 0x8000 == 0 then
        for _, q in ipairs(m.questions) do queries[#queries + 1] = q.name .. " " .. q.type end
      end
    end)
    local function asked(q)
      for _, x in ipairs(queries) do if x == q then return true end end
    end
    local n = math.random(1, 1e9)
    local inst, target = "box-" .. n .. "." .. SVC, "box-" .. n .. ".local"
    local key, key2 = N.keys():public_hex(), N.keys():public_hex()
    local function send(sock, records)
      assert(sock:send(assert(mdns.build { flags = 0x8400, records = records }), "224.0.0.251", port))
    end

    -- A complete announcement, but from another port: not mDNS, ignored.
    other = uv.new_udp()
    assert(other:bind("0.0.0.0", 0))
    assert(other:set_multicast_interface(ip))
    send(other, {
      { name = SVC, type = "PTR", ttl = 4500, target = "liar." .. SVC },
      { name = "liar." .. SVC, type = "SRV", port = 4040, target = "liar.local" },
      { name = "liar." .. SVC, type = "TXT", txt = { "v=1", "key=" .. key2 } },
      { name = "liar.local", type = "A", addr = "127.0.0.1" },
    })

    send(udp, { { name = SVC, type = "PTR", ttl = 4500, target = inst } })
    assert.is_true(N.wait(function() return asked(inst .. " ANY") end), "SRV/TXT never asked for")
    send(udp, {
      { name = inst, type = "SRV", flush = true, port = 4040, target = target },
      { name = inst, type = "TXT", flush = true, ttl = 4500, txt = { "v=1", "key=" .. key } },
    })
    assert.is_true(N.wait(function() return asked(target .. " A") end), "the address never asked for")
    assert.is_nil(h:peer(key), "discovered before the address was known")
    send(udp, { { name = target, type = "A", flush = true, addr = "127.0.0.1" } })
    assert.is_true(N.wait(function() return h:peer(key) ~= nil end), "never resolved")
    assert.same({ "discovered", false, "127.0.0.1:4040" },
      { h:peer(key).status, h:peer(key).trusted, h:peer(key).addr })
    assert.is_nil(h:peer(key2))

    -- An instance with IPv6 only: a global address is used, in brackets; a
    -- link-local one that came over IPv4 is not (nothing says which link it
    -- is on), so the address is asked for instead.
    local key3, key4 = N.keys():public_hex(), N.keys():public_hex()
    send(udp, {
      { name = SVC, type = "PTR", ttl = 4500, target = "six-" .. n .. "." .. SVC },
      { name = "six-" .. n .. "." .. SVC, type = "SRV", port = 4041, target = "six-" .. n .. ".local" },
      { name = "six-" .. n .. "." .. SVC, type = "TXT", txt = { "v=1", "key=" .. key3 } },
      { name = "six-" .. n .. ".local", type = "AAAA", addr = "::1" },
      { name = SVC, type = "PTR", ttl = 4500, target = "ll-" .. n .. "." .. SVC },
      { name = "ll-" .. n .. "." .. SVC, type = "SRV", port = 4042, target = "ll-" .. n .. ".local" },
      { name = "ll-" .. n .. "." .. SVC, type = "TXT", txt = { "v=1", "key=" .. key4 } },
      { name = "ll-" .. n .. ".local", type = "AAAA", addr = "fe80::1" },
    })
    assert.is_true(N.wait(function() return h:peer(key3) ~= nil end), "IPv6-only instance not resolved")
    assert.equal("[::1]:4041", h:peer(key3).addr)
    assert.is_true(N.wait(function() return asked("ll-" .. n .. ".local A") end))
    assert.is_nil(h:peer(key4))

    -- A TXT of another protocol version is not ours to read.
    local key5 = N.keys():public_hex()
    send(udp, {
      { name = SVC, type = "PTR", ttl = 4500, target = "v2-" .. n .. "." .. SVC },
      { name = "v2-" .. n .. "." .. SVC, type = "SRV", port = 4043, target = "v2-" .. n .. ".local" },
      { name = "v2-" .. n .. "." .. SVC, type = "TXT", txt = { "v=2", "key=" .. key5 } },
      { name = "v2-" .. n .. ".local", type = "A", addr = "127.0.0.1" },
    })
    assert.is_true(N.wait(function() return asked("v2-" .. n .. "." .. SVC .. " ANY") end))
    assert.is_nil(h:peer(key5))

    -- The same key heard of at a second address, from another instance.
    local inst2 = "box2-" .. n .. "." .. SVC
    send(udp, {
      { name = SVC, type = "PTR", ttl = 4500, target = inst2 },
      { name = inst2, type = "SRV", port = 4044, target = "box2-" .. n .. ".local" },
      { name = inst2, type = "TXT", txt = { "v=1", "key=" .. key } },
      { name = "box2-" .. n .. ".local", type = "A", addr = "127.0.0.1" },
    })
    assert.is_true(N.wait(function() return h:peer(key).addr == "127.0.0.1:4044" end))

    -- A goodbye for the PTR forgets what it gave, and only that: anyone
    -- can send one, naming any address they heard.
    send(udp, { { name = SVC, type = "PTR", ttl = 0, target = inst } })
    assert.is_true(N.wait(function() return N.logged("left 127.0.0.1:4040 %(mdns goodbye%)") end))
    assert.same({ "discovered", "127.0.0.1:4044" }, { h:peer(key).status, h:peer(key).addr })
    send(udp, { { name = SVC, type = "PTR", ttl = 0, target = inst2 } })
    assert.is_true(N.wait(function() return h:peer(key).addr == "" end))
    assert.equal("unknown", h:peer(key).status)
  end)

  it("dials a link-local AAAA on the interface it arrived on, and never zones a global one", function()
    -- An interface that is up, multicast and has an fe80:: address.
    local iface, why = multicast_interface()
    if not iface then return pending(why) end
    local ll
    for _, a in ipairs(uv.interface_addresses()[iface] or {}) do
      if a.family == "inet6" and a.ip:find("^fe80:") then ll = a.ip end
    end
    if not ll then return pending("interface " .. iface .. " has no IPv6 link-local address") end
    local port = spec_port()
    h = N.host(N.keys(), { mdns = true, mdns_port = port })
    -- A responder on the mDNS port that speaks IPv6 only: its datagrams
    -- reach the host from fe80::...%iface.
    udp = uv.new_udp("inet6")
    assert(udp:bind("::", port, { reuseaddr = true, ipv6only = true }))
    assert(udp:set_multicast_interface("::%" .. iface))
    udp:set_multicast_loop(true)
    local n = math.random(1, 1e9)
    local function instance(tag, key, port_, aaaa)
      local inst, target = tag .. "-" .. n .. "." .. SVC, tag .. "-" .. n .. ".local"
      return {
        { name = SVC, type = "PTR", ttl = 4500, target = inst },
        { name = inst, type = "SRV", port = port_, target = target },
        { name = inst, type = "TXT", txt = { "v=1", "key=" .. key } },
        { name = target, type = "AAAA", addr = aaaa },
      }
    end
    local kll, kglobal = N.keys():public_hex(), N.keys():public_hex()
    local records = instance("ll6", kll, 4044, "fe80::1")
    for _, r in ipairs(instance("g6", kglobal, 4045, "2001:db8::7")) do records[#records + 1] = r end
    assert(udp:send(assert(mdns.build { flags = 0x8400, records = records }), "ff02::fb%" .. iface, port))
    assert.is_true(N.wait(function() return h:peer(kll) ~= nil and h:peer(kglobal) ~= nil end),
      "instances heard over IPv6 link-local not resolved")
    assert.same({ "discovered", "[fe80::1%" .. iface .. "]:4044" }, { h:peer(kll).status, h:peer(kll).addr })
    assert.equal("[2001:db8::7]:4045", h:peer(kglobal).addr)
  end)
end)

describe("mDNS discovery bounds", function()
  it("remembers at most 256 untrusted keys, the stalest forgotten first; trusting still works", function()
    local iface, why = multicast_interface()
    if not iface then return pending(why) end
    local ip
    for _, a in ipairs(uv.interface_addresses()[iface] or {}) do
      if a.family == "inet" then ip = ip or a.ip end
    end
    if not ip then return pending("interface " .. iface .. " has no IPv4 address") end
    local port = spec_port()
    local h = N.host(N.keys(), { mdns = true, mdns_port = port })
    local udp = uv.new_udp()
    assert(udp:bind("0.0.0.0", port, { reuseaddr = true }))
    assert(udp:set_multicast_interface(ip))
    udp:set_multicast_loop(true)
    -- Made-up keys: any 32 bytes will do for an announcement.
    local function fake_key(i) return string.format("%064x", i + 1) end
    local function announce(i)
      local inst = "flood-" .. i .. "." .. SVC
      assert(udp:send(assert(mdns.build { flags = 0x8400, records = {
        { name = SVC, type = "PTR", ttl = 4500, target = inst },
        { name = inst, type = "SRV", port = 4040, target = "flood-" .. i .. ".local" },
        { name = inst, type = "TXT", txt = { "v=1", "key=" .. fake_key(i) } },
        { name = "flood-" .. i .. ".local", type = "A", addr = "127.0.0.1" },
      } }), "224.0.0.251", port))
    end
    -- In batches, each waited for, so no socket buffer overflows.
    local sent, total = 0, 300
    while sent < total do
      local before = h:stats().mdns_in
      for i = sent, math.min(sent + 50, total) - 1 do announce(i) end
      local batch = math.min(sent + 50, total) - sent
      sent = sent + batch
      assert.is_true(N.wait(function() return h:stats().mdns_in >= before + batch end),
        "the host did not receive every announcement")
    end
    assert.equal(256, #h:peers())
    assert.is_nil(h:peer(fake_key(0)))
    assert.truthy(h:peer(fake_key(total - 1)))
    local kt = N.keys()
    assert.truthy(h:trust(kt:public_hex()))
    assert.is_true(h:peer(kt:public_hex()).trusted)
    udp:close()
    N.close(h)
  end)
end)

describe("mDNS against python3-zeroconf", function()
  local ok_py = os.execute("/usr/bin/python3 -c 'import zeroconf' 2>/dev/null")
  local iface, why = multicast_interface()
  local hosts, zc
  before_each(function() hosts = {} end)
  after_each(function()
    if zc then zc.stop() end
    zc = nil
    N.close(table.unpack(hosts))
  end)
  local function skip()
    if not ok_py then return "python3-zeroconf is not installed for /usr/bin/python3 (scripts/setup)" end
    if not iface then return why end
  end

  it("sees our service with its port and key", function()
    if skip() then return pending(skip()) end
    local kp = N.keys()
    local name = "peernet spec " .. math.random(1, 1e9)
    local h = N.host(kp, { mdns = true, mdns_instance = name, listen = "0.0.0.0:0" })
    hosts[1] = h
    zc = zeroconf("browse", "60")
    local line = "found " .. name .. "._peernet._tcp.local. " .. h:port() .. " " .. kp:public_hex() .. " "
    assert.is_true(N.wait(function() return zc.saw(line) end, 30000),
      "zeroconf did not resolve our service; it printed:\n" .. table.concat(zc.lines, "\n"))
  end)

  it("lets us find a service it publishes, and honours its goodbye", function()
    if skip() then return pending(skip()) end
    local ka, kb = N.keys(), N.keys()
    -- a is a real peer that does no mDNS itself: zeroconf speaks for it.
    local a = N.host(ka, { trust = { kb:public_hex() }, listen = "0.0.0.0:0" })
    local b = N.host(kb, { mdns = true, trust = { ka:public_hex() } })
    hosts = { a, b }
    local events = {}
    b:on("discovered", function(key) events[#events + 1] = key end)
    zc = zeroconf("publish", "zc-spec-" .. math.random(1, 1e9), tostring(a:port()), ka:public_hex())
    assert.is_true(N.wait(function()
      local p = b:peer(ka:public_hex())
      return p and p.status == "connected"
    end, 30000), "b never connected to the peer zeroconf published; zeroconf printed:\n"
      .. table.concat(zc.lines, "\n"))
    assert.equal(ka:public_hex(), events[1])
    assert.matches(":" .. a:port() .. "$", b:peer(ka:public_hex()).addr)
    -- The goodbye (TTL 0) removes the address, not the live connection.
    zc.stdin:write("\n")
    assert.is_true(N.wait(function() return b:peer(ka:public_hex()).addr == "" end, 10000),
      "the goodbye did not remove the address")
    assert.equal("connected", b:peer(ka:public_hex()).status)
  end)
end)
