local pn = require "peernet"

local function frame(body) return string.pack(">s4", body) end

local function bodies_of(chunks, cap)
  local r = pn.frame.reader(cap)
  local out = {}
  for _, c in ipairs(chunks) do
    local got = assert(r:feed(c))
    for _, b in ipairs(got) do out[#out + 1] = b end
  end
  return out, r
end

describe("frame reader", function()
  local bodies = { "", "a", string.rep("x", 300), string.rep("\0", 70000), "tail" }
  local stream = {}
  for i, b in ipairs(bodies) do stream[i] = frame(b) end
  stream = table.concat(stream)

  it("yields every frame when fed many frames in one chunk", function()
    local got, r = bodies_of({ stream })
    assert.are.same(bodies, got)
    assert.are.equal(0, r:buffered())
  end)

  it("yields the same frames when fed one byte at a time", function()
    local chunks = {}
    for i = 1, #stream do chunks[i] = stream:sub(i, i) end
    assert.are.same(bodies, (bodies_of(chunks)))
  end)

  it("yields the same frames for every split point of a two-frame stream", function()
    local s = frame("hello") .. frame("world!")
    for cut = 0, #s do
      assert.are.same({ "hello", "world!" }, (bodies_of({ s:sub(1, cut), s:sub(cut + 1) })))
    end
  end)

  it("yields the same frames for irregular chunk sizes", function()
    local sizes, chunks, pos, k = { 1, 3, 7, 4096, 2, 65537, 5 }, {}, 1, 0
    while pos <= #stream do
      k = k % #sizes + 1
      chunks[#chunks + 1] = stream:sub(pos, pos + sizes[k] - 1)
      pos = pos + sizes[k]
    end
    assert.are.same(bodies, (bodies_of(chunks)))
  end)

  it("reports bytes held for an incomplete frame", function()
    local r = pn.frame.reader()
    assert.are.same({}, r:feed("\0\0"))
    assert.are.equal(2, r:buffered())
    assert.are.same({}, r:feed("\0\5ab"))
    assert.are.equal(6, r:buffered())
    assert.are.same({ "abcde" }, r:feed("cde"))
    assert.are.equal(0, r:buffered())
  end)

  it("accepts a body exactly at the cap", function()
    assert.are.same({ string.rep("z", 1024) }, (bodies_of({ frame(string.rep("z", 1024)) }, 1024)))
  end)

  it("refuses an over-cap frame from its header alone, before any body byte", function()
    local r = pn.frame.reader(1024)
    local got, err = r:feed(string.pack(">I4", 1025))
    assert.is_nil(got)
    assert.matches("exceeds the cap", err)
    -- and the reader stays failed
    local again, err2 = r:feed("x")
    assert.is_nil(again)
    assert.matches("failed", err2)
  end)

  it("refuses a 4 GiB header with the default 1 MiB cap", function()
    local r = pn.frame.reader()
    assert.is_nil((r:feed("\255\255\255\255")))
    local r2 = pn.frame.reader()
    assert.is_nil((r2:feed(string.pack(">I4", 1048577))))
    assert.are.same({ "" }, pn.frame.reader():feed(string.pack(">I4", 0)))
  end)

  it("fails the whole feed when a header in the chunk is over the cap", function()
    local r = pn.frame.reader(8)
    local got, err = r:feed(string.pack(">s4", "ok") .. string.pack(">s4", "too long body"))
    assert.is_nil(got)
    assert.matches("13 bytes exceeds the cap of 8", err)
  end)

  it("encodes a header and refuses a body over the cap", function()
    assert.are.equal("\0\0\0\3abc", pn.frame.encode("abc"))
    local wire, err = pn.frame.encode("abcd", 3)
    assert.is_nil(wire)
    assert.matches("exceeds the cap", err)
  end)

  it("reproduces the wire frames of the PeerNet v1 transcript", function()
    local v = H.vector_file("peernet_wire_v1.json")
    local all, want = {}, {}
    for _, m in ipairs({ "m1", "m2", "m3" }) do
      local wire = H.unhex(v.handshake[m].wire_hex)
      all[#all + 1] = wire
      want[#want + 1] = wire:sub(5)
      assert.are.equal(v.handshake[m].wire_len, #wire)
      assert.are.equal(wire, pn.frame.encode(wire:sub(5)))
    end
    for _, t in ipairs(v.transport_frames) do
      local wire = H.unhex(t.wire_hex)
      all[#all + 1] = wire
      want[#want + 1] = wire:sub(5)
    end
    assert.are.equal(8, #want)
    assert.are.same(want, (bodies_of({ table.concat(all) })))
  end)
end)
