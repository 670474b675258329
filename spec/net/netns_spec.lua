-- Hosts on two machines: each host is its own process (spec/support/nshost.lua)
-- in its own network namespace, the two joined by a veth pair, which the
-- spec creates and removes (unique names per run; removed even when a case
-- fails). Where the kernel refuses namespaces (not root, no CAP_NET_ADMIN,
-- no iproute2) the cases are pending with the reason.
--
-- "No address configured" means what it means on a fresh link: nobody gave
-- either side an IPv4 address, and the kernel gave each interface its IPv6
-- link-local fe80:: address on its own. IPv4 broadcast cannot leave such a
-- host (no route), so the hosts find each other through the announce sent
-- to ff02::1 on each link (announce_v6), or through mDNS over ff02::fb (the
-- AAAA fe80:: record, zoned with the interface it arrived on), and dial
-- fe80::...%veth.
local uv = require "luv"
local N = require "support.net"

local SCRIPT = H.source_dir .. "/spec/support/nshost.lua"

local NS = require "support.netns"
local run, must, refused = NS.run, NS.must, NS.refused

local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end

-- ---- a host process ---------------------------------------------------------

local Proc = {}
Proc.__index = Proc

local function spawn(ns, kp, args)
  local p = setmetatable({ lines = {}, err = "", buf = "", ns = ns }, Proc)
  p.stdin, p.stdout, p.stderr = uv.new_pipe(false), uv.new_pipe(false), uv.new_pipe(false)
  local argv = { "netns", "exec", ns, "env" }
  for _, v in ipairs { "LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS" } do
    if os.getenv(v) then argv[#argv + 1] = v .. "=" .. os.getenv(v) end
  end
  argv[#argv + 1] = "lua5.4"
  argv[#argv + 1] = SCRIPT
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  p.handle = assert(uv.spawn("ip", {
    args = argv,
    stdio = { p.stdin, p.stdout, p.stderr },
    -- the secret goes through the environment, not argv (ps shows argv)
    env = { "PN_SECRET_HEX=" .. hex(kp:secret()), "PN_BUILD_DIR=" .. H.build_dir,
            "PATH=" .. (os.getenv("PATH") or "/usr/sbin:/usr/bin:/sbin:/bin") },
  }, function(code) p.exited = code end))
  p.stdout:read_start(function(err, data)
    if err or not data then return end
    p.buf = p.buf .. data
    while true do
      local line, rest = p.buf:match("^([^\n]*)\n(.*)$")
      if not line then break end
      p.buf = rest
      p.lines[#p.lines + 1] = { line = line, at = uv.hrtime() }
    end
  end)
  p.stderr:read_start(function(err, data)
    if data then p.err = (p.err .. data):sub(-4000) end
  end)
  p.key = p:wait("^ready ", 0, 15000):match("key=(%x+)")
  return p
end

-- The first line after index `since` matching pat; waits for it.
function Proc:wait(pat, since, ms)
  local found
  N.wait(function()
    for i = (since or 0) + 1, #self.lines do
      if self.lines[i].line:find(pat) then found = i return true end
    end
    return self.exited ~= nil
  end, ms or 10000)
  assert(found, string.format("[%s] no line matching %q; got:\n%s\nstderr:\n%s", self.ns, pat,
    table.concat((function() local t = {} for _, l in ipairs(self.lines) do t[#t + 1] = l.line end return t end)(), "\n"),
    self.err))
  return self.lines[found].line, found, self.lines[found].at
end

function Proc:mark() return #self.lines end

function Proc:send(cmd) self.stdin:write(cmd .. "\n") end

-- A call to key's echo, waited for: true or false, and the line.
function Proc:call(key)
  local m = self:mark()
  self:send("call " .. key)
  local line = self:wait("^call ", m)
  return line:find("^call ok") ~= nil, line
end

-- Asks the host to close and waits for a clean exit (under ASan that is when
-- leaks would be reported); kills it when it does not go.
function Proc:stop()
  if self.handle and not self.handle:is_closing() then
    if self.exited == nil then
      pcall(self.send, self, "quit")
      N.wait(function() return self.exited ~= nil end, 5000)
    end
    if self.exited == nil then self.handle:kill("sigkill") end
    N.wait(function() return self.exited ~= nil end, 3000)
    self.handle:close()
  end
  for _, pipe in ipairs { self.stdin, self.stdout, self.stderr } do
    if not pipe:is_closing() then pipe:close() end
  end
end

-- ---- two namespaces and a veth between them ---------------------------------

local function make_net()
  local id = string.format("pn%06x", math.random(0, 0xffffff))
  local net = { a = id .. "a", b = id .. "b", va = id .. "a0", vb = id .. "b0", procs = {} }
  local ok, err = pcall(function()
    must("ip netns add " .. net.a)
    net.made_a = true
    must("ip netns add " .. net.b)
    net.made_b = true
    for _, ns in ipairs { net.a, net.b } do
      -- new links skip duplicate address detection, so fe80:: is usable at once
      must("ip netns exec " .. ns .. " sysctl -qw net.ipv6.conf.default.accept_dad=0")
      must("ip -n " .. ns .. " link set lo up")
    end
    must(string.format("ip link add %s netns %s type veth peer name %s netns %s", net.va, net.a,
      net.vb, net.b))
    must("ip -n " .. net.a .. " link set " .. net.va .. " up")
    must("ip -n " .. net.b .. " link set " .. net.vb .. " up")
  end)
  if not ok then
    if net.made_a then run("ip netns del " .. net.a) end
    if net.made_b then run("ip netns del " .. net.b) end
    error(err)
  end
  return net
end

local function drop_net(net)
  for _, p in ipairs(net.procs) do pcall(Proc.stop, p) end
  uv.run("nowait") -- the close callbacks, while the spec's state is still there
  run("ip netns del " .. net.a)
  run("ip netns del " .. net.b)
  for _, p in ipairs(net.procs) do
    assert(p.exited == 0, string.format("[%s] host exited with %s; stderr:\n%s", p.ns,
      tostring(p.exited), p.err))
  end
end

local function host(net, ns, kp, args)
  local p = spawn(ns, kp, args)
  net.procs[#net.procs + 1] = p
  return p
end

-- Both hosts trust each other from the start (keys known, addresses not).
local function pair(net, args_a, args_b)
  local ka, kb = N.keys(), N.keys()
  local base = { "discovery=true", "netmon=true", "announce_interval=1000" }
  local function with(extra, trust)
    local t = {}
    for _, x in ipairs(base) do t[#t + 1] = x end
    for _, x in ipairs(extra or {}) do t[#t + 1] = x end
    return t
  end
  local a = host(net, net.a, ka, with(args_a))
  local b = host(net, net.b, kb, with(args_b))
  a:send("trust " .. b.key)
  b:send("trust " .. a.key)
  return a, b
end

describe("hosts in network namespaces", function()
  if refused then
    pending(refused)
    return
  end

  it("find each other over UDP with no address configured (IPv6 link-local), then call",
    function()
      local net = make_net()
      finally(function() drop_net(net) end)
      local a, b = pair(net)
      a:wait("^event connected " .. b.key)
      b:wait("^event connected " .. a.key)
      -- whoever dialled first, each side learns the other's link-local
      -- address from its announces
      local want = "^peer connected %[fe80::[%x:]+%%" .. net.va .. "%]:7000$"
      local line
      assert(N.wait(function()
        local m = a:mark()
        a:send("peer " .. b.key)
        line = a:wait("^peer ", m)
        return line:find(want) ~= nil
      end), line)
      assert.is_true((a:call(b.key)))
      assert.is_true((b:call(a.key)))
    end)

  it("find each other by mDNS/DNS-SD with no address configured (IPv6 link-local), then call",
    function()
      local net = make_net()
      finally(function() drop_net(net) end)
      -- UDP announces off: the only way to learn where the other is, is its
      -- AAAA fe80:: record, usable because it came in over veth's link
      local only_mdns = { "discovery=false", "mdns=true" }
      local a, b = pair(net, only_mdns, only_mdns)
      a:wait("^event connected " .. b.key)
      b:wait("^event connected " .. a.key)
      for _, side in ipairs { { a, b, net.va }, { b, a, net.vb } } do
        local p, other, dev = side[1], side[2], side[3]
        local want = "^peer connected %[fe80::[%x:]+%%" .. dev .. "%]:7000$"
        local line
        assert(N.wait(function()
          local m = p:mark()
          p:send("peer " .. other.key)
          line = p:wait("^peer ", m)
          return line:find(want) ~= nil
        end), line)
        local m = p:mark()
        p:send("stats")
        assert.matches(" announces_sent=0$", (p:wait("^stats ", m)))
      end
      assert.is_true((a:call(b.key)))
      assert.is_true((b:call(a.key)))
    end)

  it("get the link back by themselves when one host's address changes", function()
    local net = make_net()
    finally(function() drop_net(net) end)
    must("ip -n " .. net.a .. " addr add 10.77.0.1/24 dev " .. net.va)
    must("ip -n " .. net.b .. " addr add 10.77.0.2/24 dev " .. net.vb)
    local a, b = pair(net, { "announce_v6=false" }, { "announce_v6=false" })
    a:wait("^event connected " .. b.key)
    b:wait("^event connected " .. a.key)
    assert.is_true((a:call(b.key)))
    local ma, mb = a:mark(), b:mark()
    local t0 = uv.hrtime()
    must("ip -n " .. net.a .. " addr del 10.77.0.1/24 dev " .. net.va)
    must("ip -n " .. net.a .. " addr add 10.77.0.9/24 dev " .. net.va)
    -- the old link is found dead and a new one forms, on both sides
    local _, i = a:wait("^event disconnected " .. b.key, ma)
    local _, _, t1 = a:wait("^event connected " .. b.key, i)
    io.stderr:write(string.format("\n[netns] address change -> link back: %.0f ms\n",
      (t1 - t0) / 1e6))
    -- b may never see its side go down: the new link replaces the old one
    local line
    assert(N.wait(function()
      local m = b:mark()
      b:send("peer " .. a.key)
      line = b:wait("^peer ", m)
      return line == "peer connected 10.77.0.9:7000"
    end), line)
    assert.is_true((a:call(b.key)))
    assert.is_true((b:call(a.key)))
  end)

  it("notice an address change through netlink, and by polling where netlink is not used",
    function()
      local net = make_net()
      finally(function() drop_net(net) end)
      local nl = host(net, net.a, N.keys(), { "netmon=true" })
      local poll = host(net, net.a, N.keys(), { "netmon=poll", "listen=[::]:7001" })
      local function changes(p)
        local m = p:mark()
        p:send("stats")
        return tonumber(p:wait("^stats ", m):match("network_changes=(%d+)"))
      end
      assert.are.equal(0, changes(nl))
      assert.are.equal(0, changes(poll))
      must("ip -n " .. net.a .. " addr add 10.77.0.5/24 dev " .. net.va)
      assert(N.wait(function() return changes(nl) >= 1 end), "netlink saw no change")
      assert(N.wait(function() return changes(poll) >= 1 end, 15000), "polling saw no change")
    end)

  it("report the peer gone when the link goes down, and reconnect when it is back", function()
    local net = make_net()
    finally(function() drop_net(net) end)
    must("ip -n " .. net.a .. " addr add 10.77.0.1/24 dev " .. net.va)
    must("ip -n " .. net.b .. " addr add 10.77.0.2/24 dev " .. net.vb)
    local quick = { "announce_v6=false", "ping_interval=300", "ping_timeout=900",
                    "backoff_min=100", "backoff_max=1000" }
    local a, b = pair(net, quick, quick)
    a:wait("^event connected " .. b.key)
    b:wait("^event connected " .. a.key)
    local ma, mb = a:mark(), b:mark()
    must("ip -n " .. net.a .. " link set " .. net.va .. " down")
    a:wait("^event disconnected " .. b.key, ma)
    b:wait("^event disconnected " .. a.key, mb) -- b's side is up: only liveness tells it
    local m = b:mark()
    b:send("peer " .. a.key)
    assert.matches("^peer disconnected", (b:wait("^peer ", m)))
    ma, mb = a:mark(), b:mark()
    must("ip -n " .. net.a .. " link set " .. net.va .. " up")
    a:wait("^event connected " .. b.key, ma)
    b:wait("^event connected " .. a.key, mb)
    assert.is_true((a:call(b.key)))
  end)
end)
