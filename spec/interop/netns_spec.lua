-- UDP discovery between two machines, one of them the real PeerNet library:
-- `peernet-host serve` in one network namespace, a PeerNet instance with
-- PeerNet.Discovery.UDP on an Elixir node in another, joined by a veth pair
-- with IPv4 addresses and no default route (so the reference's own
-- broadcasts to 255.255.255.255 go nowhere). The reference finds the host
-- from the host's announces alone, dials it and calls. Where the kernel
-- refuses namespaces (not root, no iproute2) the case is pending with the
-- reason, like spec/net/netns_spec.lua.
local C = require "support.cli"
local E = require "support.elixir"
local I = require "support.interop"

local NS = require "support.netns"
local sh, must, refused = NS.run, NS.must, NS.refused

describe("UDP discovery with the reference in another network namespace", function()
  if refused then
    pending(refused)
    return
  end

  local id = string.format("pni%05x", math.random(0, 0xfffff))
  local net = { host = id .. "h", ref = id .. "r", vh = id .. "h0", vr = id .. "r0" }
  local node

  setup(function()
    must("ip netns add " .. net.host)
    net.made_host = true
    must("ip netns add " .. net.ref)
    net.made_ref = true
    must(string.format("ip link add %s netns %s type veth peer name %s netns %s", net.vh, net.host,
      net.vr, net.ref))
    for _, side in ipairs { { net.host, net.vh, "10.78.0.1/24" }, { net.ref, net.vr, "10.78.0.2/24" } } do
      must("ip -n " .. side[1] .. " link set lo up")
      must("ip -n " .. side[1] .. " addr add " .. side[3] .. " dev " .. side[2])
      must("ip -n " .. side[1] .. " link set " .. side[2] .. " up")
    end
  end)

  teardown(function()
    if node then node:close() end
    I.cleanup()
    if net.made_host then sh("ip netns del " .. net.host) end
    if net.made_ref then sh("ip netns del " .. net.ref) end
  end)

  it("the reference hears serve's announce, dials it and calls", function()
    node = E.start { netns = net.ref }
    local h = I.host()
    local ekey = node:evalf([[
      PNI.start(:n, %q, 0, discovery: PeerNet.Discovery.UDP, discovery_opts: [interval_ms: 1_000])]],
      I.tmp() .. "/ex")
    node:evalf("PeerNet.pair(:n, %s)", E.key(h.key))
    I.trust(h, ekey) -- no address: the host cannot dial the reference's 127.0.0.1 listener
    local p = C.spawn(I.cli(h, "serve", "--listen", "0.0.0.0:7000", "--handlers", I.handlers),
      { netns = net.host })
    C.expect(p, "serving ")
    C.expect(p, "connected " .. ekey, 30000)
    assert(I.wait_linked(node, "n", h.key))
    assert.are.equal('{:ok, "found"}',
      node:evalf('PeerNet.call(:n, %s, :echo, "found")', E.key(h.key)))
    assert.matches("ip: {10, 78, 0, 1}, port: 7000, source: :udp", node:evalf([[
      inspect(Enum.map(PeerNet.Registry.list(:"n.registry"), & &1.last_address))]]))
  end)
end)
