-- One shape for every failure a script or a Lua program sees (issue 12,
-- src/lua/result.h): nil, message, kind, and, when a pn_err is behind it,
-- its code's name 4th. kind is one of peernet.kinds (src/core/reason.h).
local peernet = require "peernet"
local N = require "support.net"

local K = peernet.kinds

describe("the failure shape", function()
  it("peernet.kinds and peernet.reasons are the lists, name -> name", function()
    for _, k in ipairs { "remote", "timeout", "closed", "local", "undecodable" } do
      assert.equal(k, K[k])
    end
    for _, r in ipairs { "no_such_handle", "forbidden", "timeout", "not_connected", "undecodable" } do
      assert.equal(r, peernet.reasons[r])
    end
    assert.is_nil(K.remot)
  end)

  it("h:connect and h:send: nil, message, \"local\", code", function()
    local a = N.host(N.keys())
    local stranger = N.keys():public_hex()
    local r = table.pack(a:connect(stranger, "127.0.0.1:1", function() end))
    assert.equal(4, r.n)
    assert.is_nil(r[1])
    assert.is_string(r[2])
    assert.equal(K["local"], r[3])
    assert.equal("etrust", r[4])
    r = table.pack(a:send(stranger, "x", 1))
    assert.same({ n = 4, nil, "not_connected", K["local"], "estate" }, r)
    -- the callback of a dial that fails: false, message, "local", code
    assert(a:trust(stranger))
    local got
    assert(a:connect(stranger, "127.0.0.1:1", function(...) got = table.pack(...) end))
    assert(N.wait(function() return got end))
    assert.equal(4, got.n)
    assert.is_false(got[1])
    assert.is_string(got[2])
    assert.equal(K["local"], got[3])
    assert.matches("^e%l+$", got[4])
    N.close(a)
  end)

  it("peernet.resolve: nil, message, \"local\", code", function()
    local a = N.host(N.keys())
    local rt = peernet.runtime.new(a, {})
    local r = table.pack(rt:api().resolve("carol"))
    assert.equal(4, r.n)
    assert.is_nil(r[1])
    assert.is_string(r[2])
    assert.equal(K["local"], r[3])
    assert.matches("^e%l+$", r[4])
    rt:close()
    N.close(a)
  end)

  it("host.read and host.write: nil, message, \"local\", code", function()
    local a, b, ka = N.pair()
    local dev = H.sh("realpath " .. H.q(H.tmpdir()))
    local dir, confdir = H.tmpdir(), H.tmpdir()
    H.write_file(confdir .. "/config.lua", ([[
      return { ["dev.lua"] = { read = { %q }, write = { %q, %q } } }
    ]]):format(dev .. "/*", dev .. "/*", dev .. "/nodir/*"))
    local rt = assert(peernet.runtime.new(a, { config = confdir .. "/config.lua" }))
    H.replace_file(dir .. "/dev.lua", [[
      local function shape(...) return { n = select("#", ...), ... } end
      peernet.expose("read", function(_, p) return shape(host.read(p)) end)
      peernet.expose("write", function(_, p) return shape(host.write(p, "x")) end)
    ]])
    local report = rt:load_dir(dir)
    assert(report[1].ok, report[1].err)
    local ok, r = N.call(b, ka:public_hex(), "read", dev .. "/missing")
    assert.is_true(ok, tostring(r))
    assert.equal(4, r.n)
    assert.matches("missing", r[2])
    assert.same({ K["local"], "eio" }, { r[3], r[4] })
    ok, r = N.call(b, ka:public_hex(), "write", dev .. "/nodir/f")
    assert.is_true(ok, tostring(r))
    assert.equal(4, r.n)
    assert.same({ K["local"], "enotfound" }, { r[3], r[4] })
    rt:close()
    N.close(a, b)
    for _, d in ipairs { dir, dev, confdir } do H.rmdir(d) end
  end)
end)
