-- The examples' handler scripts tested the way docs/testing.md tells users
-- to: through peernet.testing, with no network and a virtual clock.
local peernet = require "peernet"
local T = require "peernet.testing"

-- examples/device with its light file pointed at a file of ours, and a
-- grant for that file only (the example's config.lua grants the same for
-- /tmp/peernet-demo/light).
local function device()
  local dir = H.tmpdir()
  local light = dir .. "/light"
  os.execute("mkdir " .. dir .. "/handlers")
  local text = H.read_file(H.source_dir .. "/examples/device/handlers/light.lua")
  H.write_file(dir .. "/handlers/light.lua", (text:gsub("/tmp/peernet%-demo/light", light)))
  local d = T.load(dir .. "/handlers", { grants = ("return { ['light.lua'] = { write = { %q } } }"):format(light) })
  return d, light, dir
end

describe("examples/device through peernet.testing", function()
  local d, light, dir
  before_each(function() d, light, dir = device() end)
  after_each(function()
    d:close()
    H.rmdir(dir)
  end)

  it("toggles the light through the write grant, as any caller sees it", function()
    local k = T.key()
    assert.equal("off", d:call(k, "light.get"))
    assert.equal("on", d:call(k, "light.toggle"))
    assert.equal("on\n", H.read_file(light))
    local v, reason, kind = d:call(k, "light.set", "purple")
    assert.is_nil(v)
    assert.equal("badarg", reason)
    assert.equal("remote", kind)
    assert.truthy(d:logged("light is on"))
  end)

  it("tells a newly connected peer how the light is (a send to its notify stub)", function()
    local k = T.key()
    d:stub(k, "notify", true)
    d:event("connected", k)
    local sent = d:sent_to(k, "notify")
    assert.equal(1, #sent)
    assert.equal("send", sent[1].what)
    assert.equal("the light is off", sent[1].args)
  end)

  it("light.on_for switches it off when the virtual clock passes the time", function()
    local k = T.key()
    assert.equal("on", d:call(k, "light.on_for", 60000))
    d:advance(59999)
    assert.equal("on", d:call(k, "light.get"))
    d:advance(1)
    assert.equal("off", d:call(k, "light.get"))
    assert.equal("off\n", H.read_file(light))
  end)
end)

describe("examples/phone_admin through peernet.testing", function()
  it("beam_admin answers the phone only: anyone else is forbidden", function()
    local phone, other = T.key(), T.key()
    local trust = H.tmpdir() .. "/trust.list"
    H.write_file(trust, phone .. " phone\n")
    local d = T.load(H.source_dir .. "/examples/phone_admin/handlers", { config = false, trust = trust })
    local v, reason, kind = d:call(other, "beam_admin", peernet.tuple(peernet.atom("rpc"),
      peernet.atom("device"), peernet.atom("info"), {}))
    assert.is_nil(v)
    assert.equal("forbidden", reason)
    assert.equal("remote", kind)
    assert.equal(7, d:call(phone, "beam_admin", peernet.tuple(peernet.atom("rpc"),
      peernet.atom("Device"), peernet.atom("set_volume"), { 7 })))
    d:close()
  end)
end)
