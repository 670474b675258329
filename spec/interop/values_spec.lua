-- Elixir -> Lua handler round trips against the real PeerNet library: a
-- PeerNet instance on a real Elixir node calls the handlers of
-- spec/interop/handlers/ in a real `peernet-host serve`, and compares what
-- comes back exactly (same term and same external format, so -0.0 is not
-- 0.0). Each row either comes back equal, or mapped as docs/values.md says
-- (the row names the Elixir term it must come back as). Every row also
-- checks that the link it used is still the same connection afterwards.
local E = require "support.elixir"
local I = require "support.interop"

local node, h, ekey

setup(function()
  node = E.start()
  h = I.host()
  ekey = I.elixir(node, "n")
  I.trust(h, ekey, "--label", "phone")
  I.serve(h, E.free_port())
  I.elixir_dials(node, "n", h)
  assert(I.wait_linked(node, "n", h.key), "the reference never connected")
end)

teardown(function()
  if node then node:close() end
  I.cleanup()
end)

-- The connection the reference uses now (waiting for one if a previous row
-- cost the link: the reference redials, and one row's failure must not
-- fail the next).
local function link()
  assert(I.wait_linked(node, "n", h.key), "no link to the host")
  return node:evalf('inspect(PNI.conn_pid(:n, "%s"))', h.key)
end

local function call(handle, expr)
  return node:evalf('PeerNet.call(:n, %s, :%s, %s, 10_000)', E.key(h.key), handle, expr)
end

local ROWS = require("interop.rows").rows

describe("Elixir -> Lua echo, compared exactly", function()
  for _, row in ipairs(ROWS) do
    local label, expr, want = row[1], row[2], row[3]
    it(label .. (want and (" maps to " .. want) or " comes back equal"), function()
      local before = link()
      assert.are.equal("equal", I.roundtrip(node, "n", h.key, expr, want))
      assert.are.equal(before, link(), "the link changed")
    end)
  end
end)

describe("integers outside int64 reach a handler exactly", function()
  for _, v in ipairs { "9223372036854775808", "18446744073709551615", "18446744073709551616",
                       "1180591620717411303424", "-18446744073709551616", "-9223372036854775809" } do
    it(v .. " is not a float in Lua", function()
      local before = link()
      local got = call("kind", v)
      assert.are_not.matches('"float"', got)
      assert.matches('"' .. v .. '"}}$', got)
      assert.are.equal(before, link(), "the link changed")
    end)
  end
end)

describe("errors as the reference sees them; the link survives each", function()
  local CASES = {
    { "a raised error answers the bare atom handler_crash", "raise", "{:error, :handler_crash}" },
    { "nil, reason answers {:error, reason}", "fail", '{:error, "no such room"}' },
    { "nil, atom answers {:error, atom}", "fail_atom", "{:error, :badarg}" },
    { "a name nobody exposed answers no_such_handle", "nobody_here", "{:error, :no_such_handle}" },
    { "a refusing predicate answers forbidden", "guarded", "{:error, :forbidden}" },
    { "a handler past its CPU budget answers handler_crash", "spin", "{:error, :handler_crash}" },
  }
  for _, c in ipairs(CASES) do
    it(c[1], function()
      local before = link()
      assert.are.equal(c[3], call(c[2], "[1, 2]"))
      assert.are.equal("{:ok, 42}", call("echo", "42"))
      assert.are.equal(before, link(), "the link changed")
    end)
  end
end)

-- Not peernet-host's behaviour but the library's, which docs/elixir.md tells
-- Elixir users about: its safe decode refuses an atom its VM never saw, and
-- it closes the link (shared/reference/README.md). Pinned so the guide stays
-- true to the library.
describe("the reference and atoms it has never seen (docs/elixir.md)", function()
  it("a reply holding one closes the link: the caller gets not_connected, then it redials", function()
    local before = link()
    assert.are.equal("{:error, :not_connected}", call("unseen_atom", "nil"))
    local after = link()
    assert.are_not.equal(before, after)
    assert.are.equal("{:ok, 1}", call("echo", "1"))
  end)

  it("a handle name it never saw closes the link too: the CLI exits 5", function()
    local before = link()
    local code, _, err = I.run(h, "call", ekey, "pn_interop_no_such_name_7f3a", "--timeout", "5000")
    assert.are.equal(5, code)
    assert.matches("closed before the reply", err)
    assert.are_not.equal(before, link())
    assert(I.wait_host_linked(h, ekey))
    local out
    code, out, err = I.run(h, "call", ekey, "ok") -- an atom it knows: a plain answer
    assert.are.equal(3, code, out .. err)
    assert.matches('atom"no_such_handle"', err)
  end)
end)
