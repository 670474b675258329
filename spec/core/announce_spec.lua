local pn = require "peernet"

describe("UDP announce", function()
  local v = H.vector_file("udp_announce.json")

  it("encodes and decodes every valid vector", function()
    assert.is_true(#v.vectors >= 3)
    for _, t in ipairs(v.vectors) do
      local key = H.unhex(t.pubkey_hex)
      local wire = H.unhex(t.hex)
      assert.are.equal(t.hex, H.hex(pn.announce.encode(t.port, key)), t.name)
      local port, k = pn.announce.decode(wire)
      assert.are.equal(t.port, port, t.name)
      assert.are.equal(key, k, t.name)
    end
  end)

  it("refuses every must_reject vector with a reason", function()
    assert.is_true(#v.must_reject >= 4)
    for _, t in ipairs(v.must_reject) do
      local port, err = pn.announce.decode(H.unhex(t.hex))
      assert.is_nil(port, t.name)
      assert.is_string(err, t.name)
    end
  end)

  it("says why a datagram is refused", function()
    local good = H.unhex(v.vectors[1].hex)
    assert.matches("39", (select(2, pn.announce.decode(good:sub(1, 38)))))
    assert.matches("magic", (select(2, pn.announce.decode("XNET" .. good:sub(5)))))
    assert.matches("version 2", (select(2, pn.announce.decode(good:sub(1, 4) .. "\2" .. good:sub(6)))))
    assert.is_nil((pn.announce.decode("")))
  end)

  it("refuses out-of-range ports and wrong key sizes when encoding", function()
    assert.has_error(function() pn.announce.encode(65536, string.rep("a", 32)) end)
    assert.has_error(function() pn.announce.encode(-1, string.rep("a", 32)) end)
    assert.has_error(function() pn.announce.encode(4040, string.rep("a", 31)) end)
  end)
end)
