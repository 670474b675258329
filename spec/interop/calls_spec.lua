-- peernet-host -> Elixir and the admin operations both ways, against the
-- real PeerNet library: short-lived `call`/`send` (no running host), the same
-- through a running `serve` (control socket), a run script that calls right
-- after `peernet.connect`, peernet.admin.call/.cast into the reference's
-- beam_admin, and the reference's BeamDist.call/cast into the host's.
--
-- The reference's supervisor gives up after more than 3 closed connections
-- in 5 s (shared/reference/README.md), so each case starts its instance
-- afresh and makes at most 3 short-lived connections.
local C = require "support.cli"
local E = require "support.elixir"
local I = require "support.interop"

local node, h, other, ekey, eport, exdir

setup(function()
  node = E.start()
  h, other = I.host(), I.host()
  eport, exdir = E.free_port(), I.tmp() .. "/ex"
end)

teardown(function()
  if node then node:close() end
  I.cleanup()
end)

-- A fresh instance :n on eport trusting h and other; beam_admin for h only.
before_each(function()
  ekey = node:evalf('PNI.start(:n, %q, %d)', exdir, eport)
  node:eval("PNI.notes_start()")
  node:evalf([[
    hk = %s
    :ok = PeerNet.pair(:n, hk)
    :ok = PeerNet.pair(:n, %s)
    :ok = PeerNet.expose(:n, :echo, fn _from, args -> args end)
    :ok = PeerNet.expose(:n, :inspect, fn _from, args -> inspect(args) end)
    :ok = PeerNet.expose(:n, :note, fn _from, args -> PNI.note(args) end)
    :ok = PeerNet.expose(:n, :beam_admin, &PeerNet.BeamDist.handle/2, authorize: fn k -> k == hk end)
  ]], E.key(h.key), E.key(other.key))
  for _, x in ipairs { h, other } do I.trust(x, ekey, "--addr", "127.0.0.1:" .. eport) end
end)

after_each(function()
  I.stop(h.serve)
  h.serve = nil
end)

-- Waits (bounded) until the instance has noted n values; their inspect.
local function notes(n)
  return node:evalf("PNI.wait(fn -> length(PNI.notes()) >= %d end, 5_000); inspect(PNI.notes(), charlists: :as_lists)", n)
end

local function run_script(x, body, ...)
  local file = I.tmp() .. "/script.lua"
  H.write_file(file, body)
  return I.run(x, "run", file, ...)
end

describe("peernet-host -> Elixir with no running host (short-lived)", function()
  it("call: each of 3 fresh links answers its first call", function()
    for i = 1, 3 do
      local code, out, err = I.run(h, "call", ekey, "echo", string.format('{%d, "x"}', i),
        "--timeout", "5000")
      assert.are.equal(0, code, "call " .. i .. ": " .. err)
      assert.are.equal(string.format('{%d, "x"}\n', i), out)
    end
  end)

  it("send: each of 3 fresh links delivers its one message", function()
    for i = 1, 3 do
      local code, _, err = I.run(h, "send", ekey, "note", '"s' .. i .. '"')
      assert.are.equal(0, code, err)
    end
    assert.are.equal('["s1", "s2", "s3"]', notes(3))
  end)

  it("a run script's first call right after connect is answered", function()
    local script = [[
      local key = arg[1]
      assert(peernet.connect(key))
      local v, err = peernet.call(key, "echo", { 1, "first" }, { timeout = 3000 })
      print("first", v and v[2] or ("error " .. tostring(err)))
      v, err = peernet.call(key, "echo", 2, { timeout = 3000 })
      print("second", v or ("error " .. tostring(err)))
    ]]
    for i = 1, 3 do
      local code, out, err = run_script(h, script, ekey)
      assert.are.equal(0, code, err)
      assert.are.equal("first\tfirst\nsecond\t2\n", out, "run " .. i)
    end
  end)

  it("call and send with the args left out send nil", function()
    local code, out, err = run_script(h, [[
      local key = arg[1]
      assert(peernet.connect(key))
      -- a first call of its own: first-call delivery is the case above
      peernet.call(key, "echo", "warm-up", { timeout = 3000 })
      print(assert(peernet.call(key, "inspect")))
      assert(peernet.send(key, "note"))
      print(assert(peernet.call(key, "inspect", nil)))
    ]], ekey)
    assert.are.equal(0, code, err)
    -- the handler answers inspect(args): the text nil both times (an omitted
    -- args that became [] or a function would read "[]" or fail)
    assert.are.equal("nil\nnil\n", out)
    assert.are.equal("[nil]", notes(1))
  end)
end)

describe("peernet-host -> Elixir through a running serve (control socket)", function()
  it("calls and sends on the link serve keeps, which stays the same link", function()
    local p = I.serve(h, E.free_port())
    -- no wait for the reference's side: a user calls once serve says connected
    C.expect(p, "connected " .. ekey)
    for i = 1, 5 do
      local code, out, err = I.run(h, "call", ekey, "echo", tostring(i))
      assert.are.equal(0, code, err)
      assert.are.equal(i .. "\n", out)
    end
    for i = 1, 3 do
      local code, _, err = I.run(h, "send", ekey, "note", tostring(i))
      assert.are.equal(0, code, err)
    end
    assert.are.equal("[1, 2, 3]", notes(3))
    local code, out = I.run(h, "call", ekey, "echo", '{atom"ok", tuple(1, 2), map{}}', "--json")
    assert.are.equal(0, code)
    assert.are.equal('{"ok":true,"value":["ok",{"$tuple":[1,2]},{}]}\n', out)
    assert.are.equal(1, I.connects(p, ekey))
    assert.are.equal("true", node:evalf('PNI.connected?(:n, "%s")', h.key))
  end)
end)

describe("admin operations", function()
  local ADMIN = [[
    local key = arg[1]
    assert(peernet.connect(key))
    -- a first call of its own: first-call delivery is pinned above
    peernet.call(key, "echo", "warm-up", { timeout = 3000 })
    print("call", peernet.admin.call(key, "Elixir.PNI", "add", { 2, 3 }))
    print("cast", peernet.admin.cast(key, "Elixir.PNI", "note", { "cast-1" }))
  ]]

  it("peernet.admin.call/.cast reach the reference's BeamDist.handle", function()
    local code, out, err = run_script(h, ADMIN, ekey)
    assert.are.equal(0, code, err)
    assert.matches("^call\t5\n", out)
    assert.matches("\ncast\t", out)
    assert.are.equal('["cast-1"]', notes(1))
  end)

  it("a key the reference's authorize refuses gets forbidden", function()
    local code, out, err = run_script(other, ADMIN, ekey)
    assert.are.equal(0, code, err)
    assert.matches("^call\tnil\tforbidden\tremote\n", out) -- the peer refused: kind remote
    assert.are.equal("[]", node:eval("inspect(PNI.notes())"))
  end)

  local function serve_for_phone()
    I.trust(h, ekey, "--label", "phone")
    local p = I.serve(h, E.free_port())
    C.expect(p, "connected " .. ekey)
    -- serve's side is up once it wrote M3; the reference's once it read it
    assert(I.wait_linked(node, "n", h.key))
    return E.key(h.key)
  end

  it("the reference's BeamDist.call/cast reach the host's admin module", function()
    local hk = serve_for_phone()
    assert.are.equal("{:ok, 5}", node:evalf("PeerNet.BeamDist.call(:n, %s, Device, :add, [2, 3])", hk))
    assert.are.equal(":ok", node:evalf('PeerNet.BeamDist.cast(:n, %s, Device, :remember, ["hi"])', hk))
    assert.are.equal('{:ok, "hi"}', node:evalf([[
      PNI.wait(fn ->
        r = PeerNet.BeamDist.call(:n, %s, Device, :last, [])
        if r == {:ok, "hi"}, do: r
      end, 5_000)]], hk))
  end)

  it("the host's beam_admin refuses module and function names that are not atoms", function()
    -- as PROTOCOL.md and the reference's own BeamDist.handle/2 answer
    local hk = serve_for_phone()
    assert.are.equal("{:error, :unknown_beam_dist_op}",
      node:evalf('PeerNet.call(:n, %s, :beam_admin, {:rpc, "Device", :add, [1, 2]})', hk))
    assert.are.equal("{:error, :unknown_beam_dist_op}",
      node:evalf('PeerNet.call(:n, %s, :beam_admin, {:rpc, Device, "add", [1, 2]})', hk))
    assert.are.equal("{:ok, 3}", node:evalf("PeerNet.BeamDist.call(:n, %s, Device, :add, [1, 2])", hk))
  end)

  it("a key the host's authorize refuses gets forbidden from its beam_admin", function()
    local hk = serve_for_phone()
    -- a second instance the host trusts but has not labelled "phone"
    local mkey = node:evalf('PNI.start(:m, %q, 0)', I.tmp() .. "/m")
    I.trust(h, mkey)
    assert(I.wait_host_trusts(h, mkey))
    node:evalf("PeerNet.pair(:m, %s); PNI.announce(:m, %q, %d)", hk, h.key, h.port)
    assert(I.wait_linked(node, "m", h.key))
    assert.are.equal("{:error, :forbidden}",
      node:evalf("PeerNet.BeamDist.call(:m, %s, Device, :add, [2, 3])", hk))
    assert.are.equal("{:ok, 5}", node:evalf("PeerNet.BeamDist.call(:n, %s, Device, :add, [2, 3])", hk))
    node:eval("PNI.stop(:m)")
  end)
end)
