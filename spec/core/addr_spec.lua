-- The one address bound (peernet.addr_max, core/addr.h): every way an
-- address enters a host keeps it whole up to the bound and refuses a longer
-- one with the same message, never a shortened copy.
local uv = require "luv"
local peernet = require "peernet"
local N = require "support.net"
local C = require "support.cli"
local A = require "support.addr"

local MAX = peernet.addr_max
local TOO_LONG = "address longer than " .. MAX .. " bytes"

local tmpdir = C.tmpdir
teardown(C.cleanup)

describe("a host's addresses", function()
  local h
  before_each(function() h = N.host(N.keys()) end)
  after_each(function() N.close(h) end)

  it("are kept whole by h:trust and reported back whole by h:peer", function()
    for _, a in ipairs { A.name(67), A.name(MAX), A.v6_zone } do
      local k = N.keys():public_hex()
      assert.is_true(h:trust(k, a))
      assert.equal(a, h:peer(k).addr)
    end
  end)

  it("longer than peernet.addr_max are refused by h:trust and h:connect", function()
    local k = N.keys():public_hex()
    local ok, err = h:trust(k, A.name(MAX + 1))
    assert.is_nil(ok)
    assert.truthy(err:find(TOO_LONG, 1, true), err)
    assert.is_nil(h:peer(k))
    ok, err = h:trust(k, "a.lan:4040\0junk")
    assert.is_nil(ok)
    assert.truthy(err:find("bad address", 1, true), err)
    assert.is_nil(h:peer(k))
    assert.is_true(h:trust(k))
    ok, err = h:connect(k, A.name(MAX + 1), function() error("no dial was started") end)
    assert.is_nil(ok)
    assert.truthy(err:find(TOO_LONG, 1, true), err)
    assert.equal("", h:peer(k).addr)
  end)

  it("are kept whole from a trust file, and a file with a longer one is not applied", function()
    local path = tmpdir() .. "/trust.list"
    local k1, k2 = N.keys():public_hex(), N.keys():public_hex()
    H.write_file(path, k1 .. " long " .. A.name(MAX) .. "\n" .. k2 .. " - " .. A.name(67) .. "\n")
    assert(h:trust_file(path))
    assert.equal(A.name(MAX), h:peer(k1).addr)
    assert.equal(A.name(67), h:peer(k2).addr)
    H.write_file(path, k1 .. " long " .. A.name(MAX + 1) .. "\n")
    assert(N.wait(function() return N.logged("not reloaded") end))
    assert.truthy(N.logged(":1: " .. TOO_LONG), table.concat(N.logs, "\n"))
    assert.equal(A.name(MAX), h:peer(k1).addr)
    assert.is_true(h:peer(k2).trusted)
  end)
end)

describe("peernet-host trust add --addr", function()
  it("keeps an address up to peernet.addr_max whole and refuses a longer one", function()
    local dir = C.init(tmpdir() .. "/data")
    local dd = function(...) return { "--data-dir", dir, ... } end
    local k1, k2 = N.keys():public_hex(), N.keys():public_hex()
    local code, _, err = C.run(dd("trust", "add", k1, "--addr", A.name(MAX)))
    assert.equal(0, code, err)
    code, _, err = C.run(dd("trust", "add", k2, "--addr", A.name(67)))
    assert.equal(0, code, err)
    local json = require "dkjson"
    local list = json.decode((select(2, C.run(dd("trust", "ls", "--json")))))
    local got = {}
    for _, e in ipairs(list) do got[e.key] = e.addr end
    assert.same({ [k1] = A.name(MAX), [k2] = A.name(67) }, got)
    code, _, err = C.run(dd("trust", "add", N.keys():public_hex(), "--addr", A.name(MAX + 1)))
    assert.equal(2, code)
    assert.truthy(err:find(TOO_LONG, 1, true), err)
  end)
end)
