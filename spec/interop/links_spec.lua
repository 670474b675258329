-- Links between a real PeerNet (Elixir) instance and a real `peernet-host
-- serve`: either side restarts and the other reconnects by itself (the time
-- it took is printed, not asserted), and duplicate connections in both key
-- orders, whichever side dials second, while the reference makes a steady
-- stream of calls: every call succeeds and both sides end with one link.
local uv = require "luv"
local N = require "support.net"
local C = require "support.cli"
local E = require "support.elixir"
local I = require "support.interop"

local node

setup(function() node = E.start() end)

teardown(function()
  if node then node:close() end
  I.cleanup()
end)

after_each(function() C.reap() end)

local function ms_since(t0) return (uv.hrtime() - t0) / 1e6 end

local host_peer = I.host_peer

local function expose_echo(name)
  node:evalf(":ok = PeerNet.expose(:%s, :echo, fn _from, args -> args end)", name)
end

describe("restarts", function()
  it("the reference reconnects by itself when serve restarts", function()
    local h, eport = I.host(), E.free_port()
    local ekey = I.elixir(node, "n", eport)
    I.trust(h, ekey) -- no address: only the reference dials
    local port = E.free_port()
    local p = I.serve(h, port)
    I.elixir_dials(node, "n", h)
    assert(I.wait_linked(node, "n", h.key))
    I.stop(p)
    assert.are.equal("true", node:evalf('PNI.wait(fn -> not PNI.connected?(:n, "%s") end)', h.key))
    local t0 = uv.hrtime()
    I.serve(h, port)
    local up = ms_since(t0)
    assert(I.wait_linked(node, "n", h.key), "the reference did not come back")
    io.stderr:write(string.format("\n[interop] serve restarted (%.0f ms to listen): the reference "
      .. "reconnected %.0f ms after the restart began\n", up, ms_since(t0)))
    assert.are.equal("{:ok, 7}", node:evalf("PeerNet.call(:n, %s, :echo, 7)", E.key(h.key)))
  end)

  it("serve reconnects by itself when the reference restarts", function()
    local h, eport, exdir = I.host(), E.free_port(), I.tmp() .. "/ex"
    local ekey = node:evalf('PNI.start(:n, %q, %d)', exdir, eport)
    node:evalf("PeerNet.pair(:n, %s)", E.key(h.key)) -- no address: only serve dials
    expose_echo("n")
    I.trust(h, ekey, "--addr", "127.0.0.1:" .. eport)
    local p = I.serve(h, E.free_port())
    C.expect(p, "connected " .. ekey)
    node:eval("PNI.stop(:n)")
    C.expect(p, "disconnected " .. ekey)
    local t0 = uv.hrtime()
    assert.are.equal(ekey, node:evalf('PNI.start(:n, %q, %d)', exdir, eport))
    expose_echo("n")
    local up = ms_since(t0)
    assert(N.wait(function() return I.connects(p, ekey) == 2 end, 60000),
      "serve did not come back: " .. p.out)
    io.stderr:write(string.format("\n[interop] reference restarted (%.0f ms to listen): serve "
      .. "reconnected %.0f ms after the restart began\n", up, ms_since(t0)))
    local code, out, err = I.run(h, "call", ekey, "echo", "8")
    assert.are.equal(0, code, err)
    assert.are.equal("8\n", out)
  end)
end)

-- A stream of 400 calls from the reference to the host's echo, back to
-- back; after call 50 the second connection is made to happen. Returns the
-- outcome counts as Elixir prints them, and the counts of anything but
-- success that a peer can cause.
--
-- One failure is the reference's own and no peer can prevent it: when the
-- new connection registers, its Registry tells the old one it is superseded,
-- and the old one fails the call in flight on it with {:error, :superseded}
-- (Connection.fail_pending) even when the reply is already on its way. With
-- calls back to back there is nearly always one in flight, so at most one
-- such call is allowed; an outage (not_connected) or a link closed under a
-- call (connection_closed, transport_failed) is not.
local function stream(h, trigger)
  local got = node:evalf('r = PNI.stream(:n, "%s", :echo, 400, 50, fn -> %s end); inspect(r)',
    h.key, trigger)
  return got, node:eval("inspect(Map.drop(r, [:ok, {:error, :superseded}]))"),
    tonumber(node:eval("inspect(Map.get(r, {:error, :superseded}, 0))"))
end

-- Waits until both sides have one link between them, and says so.
local function settled(h, ekey)
  local p
  local ok = N.wait(function()
    p = host_peer(h, ekey)
    return p and p.status == "connected" and p.connections == 1
  end, 15000)
  return ok and I.wait_linked(node, "n", h.key), p
end

local ORDERS = { "lower", "higher" }

describe("duplicate connections: every call of a stream during them succeeds", function()
  for _, order in ipairs(ORDERS) do
    it("the reference dials while a host-dialled link is up (host key " .. order .. ")", function()
      local eport = E.free_port()
      local ekey = I.elixir(node, "n", eport)
      local h = I.host_ordered(order, ekey)
      node:evalf("PeerNet.pair(:n, %s)", E.key(h.key))
      I.trust(h, ekey, "--addr", "127.0.0.1:" .. eport)
      local p = I.serve(h, E.free_port())
      C.expect(p, "connected " .. ekey)
      assert(I.wait_linked(node, "n", h.key))
      local got, others, superseded = stream(h, string.format("PeerNet.connect(:n, %s, {127, 0, 0, 1}, %d)",
        E.key(h.key), h.port))
      io.stderr:write(string.format("\n[interop] reference dials second, host key %s: %s\n", order, got))
      assert.are.equal("%{}", others, got)
      assert.is_true(superseded <= 1, got)
      assert.is_true((settled(h, ekey)))
    end)

    it("the host dials while a reference-dialled link is up (host key " .. order .. ")", function()
      local eport = E.free_port()
      local ekey = I.elixir(node, "n", eport)
      local h = I.host_ordered(order, ekey)
      node:evalf("PeerNet.pair(:n, %s)", E.key(h.key))
      I.trust(h, ekey, "--addr", "127.0.0.1:" .. eport)
      -- The reference accepts nothing until resumed: serve's dial waits in
      -- its handshake while the reference dials serve and that link comes up.
      node:eval(':sys.suspend(:"n.acceptor")')
      local p = I.serve(h, E.free_port())
      assert(N.wait(function()
        local peer = host_peer(h, ekey)
        return peer and peer.status == "connecting"
      end), "serve is not dialling")
      node:evalf('PNI.announce(:n, "%s", %d)', h.key, h.port)
      C.expect(p, "connected " .. ekey)
      assert(I.wait_linked(node, "n", h.key))
      local got, others, superseded = stream(h, ':sys.resume(:"n.acceptor")')
      io.stderr:write(string.format("\n[interop] host dials second, host key %s: %s\n", order, got))
      assert.are.equal("%{}", others, got)
      assert.is_true(superseded <= 1, got)
      assert.is_true((settled(h, ekey)))
    end)
  end
end)
