-- peernet.trust: the hand-editable trust list file.
local peernet = require "peernet"
local keys, trust = peernet.keys, peernet.trust
local A = require "support.addr"
local MAX = peernet.addr_max

local sh, q, write_file, read_file = H.sh, H.q, H.write_file, H.read_file
local mode_of, names_in = H.mode_of, H.names_in

-- Deterministic keys: the public key of the secret n * 32.
local function key(n) return keys.from_secret(string.rep(string.char(n), 32)):public() end
local K1, K2, K3, K4 = keys.hex(key(1)), keys.hex(key(2)), keys.hex(key(3)), keys.hex(key(4))

describe("peernet.trust", function()
  local dir, path
  before_each(function()
    dir = H.tmpdir()
    path = dir .. "/trust.list"
  end)
  after_each(function() H.rmdir(dir) end)

  describe("a new store", function()
    it("opens a missing file as empty and creates it, with a format header, on save", function()
      local t = assert(trust.open(path))
      assert.are.equal(0, t:count())
      assert.are.same({}, t:list())
      assert.is_nil(io.open(path, "rb"))
      assert(t:add(K1, {label = "phone", added = "2024-05-01T12:00:00Z"}))
      assert.is_true(t:save())
      local text = read_file(path)
      assert.truthy(text:match("^# PeerNet trust list"))
      assert.truthy(text:find("KEY [LABEL [HOST:PORT [ADDED]]]", 1, true))
      assert.truthy(text:find("\n" .. K1 .. " phone - 2024-05-01T12:00:00Z\n", 1, true))
      local back = assert(trust.open(path))
      assert.are.same({{key = K1, label = "phone", added = "2024-05-01T12:00:00Z"}}, back:list())
    end)

    it("creates a missing directory 0700 and the file 0600, leaving no temp files", function()
      local p = dir .. "/data/trust.list"
      local t = assert(trust.open(p))
      assert(t:add(K1, {label = "a"}))
      assert(t:save())
      assert.are.equal("700", mode_of(dir .. "/data"))
      assert.are.equal("600", mode_of(p))
      assert.are.equal("trust.list", names_in(dir .. "/data"))
    end)
  end)

  describe("entries", function()
    it("are added, found and removed by key or by label", function()
      local t = assert(trust.open(path))
      assert(t:add(K1, {label = "phone", addr = "192.168.1.20:4040", added = 0}))
      assert(t:add(K2, {label = "laptop", addr = "[fe80::1%eth0]:4040"}))
      assert(t:add(K3))
      assert.are.equal(3, t:count())
      assert.are.equal(3, #t)
      local e = t:get("phone")
      assert.are.same({key = K1, label = "phone", addr = "192.168.1.20:4040",
                       added = "1970-01-01T00:00:00Z"}, e)
      assert.are.same(e, t:get(K1))
      assert.are.same(e, t:get(K1:upper()))
      assert.are.same(e, t:get(keys.base64(key(1))))
      assert.are.same(e, t:get(keys.base64url(key(1))))
      assert.are.equal(K2, t:get("laptop").key)
      assert.are.equal(K3, t:get(K3).key)
      assert.is_nil(t:get(K3).label)
      assert.truthy(t:get(K3).added:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"))
      assert.is_nil(t:get("tablet"))
      assert.is_nil(t:get(K4))

      assert.is_true(t:remove("laptop"))
      assert.is_nil(t:get(K2))
      assert.is_true(t:remove(keys.base64(key(1))))
      assert.is_nil(t:get("phone"))
      local ok, err = t:remove("phone")
      assert.is_nil(ok)
      assert.truthy(err:find("phone", 1, true))
      assert.are.same({K3}, {t:list()[1].key})
    end)

    it("are listed in file order", function()
      local t = assert(trust.open(path))
      for _, k in ipairs({K3, K1, K4, K2}) do assert(t:add(k, {added = "-"})) end
      local got = {}
      for i, e in ipairs(t:list()) do got[i] = e.key end
      assert.are.same({K3, K1, K4, K2}, got)
    end)

    it("update when the key is added again: given fields replace, nil keeps, '-' clears", function()
      local t = assert(trust.open(path))
      assert(t:add(K1, {label = "phone", addr = "a.lan:1", added = "2024-01-01T00:00:00Z"}))
      assert(t:add(K1, {addr = "b.lan:2", added = "2025-01-01T00:00:00Z"}))
      assert.are.same({key = K1, label = "phone", addr = "b.lan:2", added = "2024-01-01T00:00:00Z"},
                      t:get(K1))
      assert(t:add(keys.base64url(key(1)), {label = "-", addr = "-"}))
      assert.are.same({key = K1, added = "2024-01-01T00:00:00Z"}, t:get(K1))
      assert.are.equal(1, t:count())
    end)

    it("refuse a label that already names another key", function()
      local t = assert(trust.open(path))
      assert(t:add(K1, {label = "phone"}))
      local ok, err = t:add(K2, {label = "phone"})
      assert.is_nil(ok)
      assert.truthy(err:find("label 'phone' already names key " .. K1:sub(1, 16), 1, true))
      assert.is_nil(t:get(K2))
      assert(t:add(K1, {label = "phone"})) -- its own label is fine
    end)

    it("refuse bad keys, labels, addresses and times", function()
      local t = assert(trust.open(path))
      local cases = {
        {"xyz", nil, "not a key"},
        {K1, {label = "has space"}, "bad label"},
        {K1, {label = string.rep("a", 65)}, "bad label"},
        {K1, {label = "-x/"}, "bad label"},
        {K1, {label = K2}, "reads as a key"},
        {K1, {label = keys.base64url(key(2))}, "reads as a key"},
        {K1, {addr = "host"}, "missing ':PORT'"},
        {K1, {addr = "host:0"}, "port"},
        {K1, {addr = "host:65536"}, "port"},
        {K1, {addr = "host:04040"}, "port"},
        {K1, {addr = "::1:4040"}, "brackets"},
        {K1, {addr = "[::g]:4040"}, "IPv6"},
        {K1, {addr = "300.1.1.1:4040"}, "IPv4"},
        {K1, {addr = "-bad-.lan:4040"}, "host name"},
        {K1, {addr = "a_b.lan:4040"}, "host names use only"},
        {K1, {added = "2024-02-30T00:00:00Z"}, "bad time"},
        {K1, {added = "2024-01-01 00:00:00"}, "bad time"},
        {K1, {added = 253402300800}, "bad time"},
      }
      for i, c in ipairs(cases) do
        local ok, err = t:add(c[1], c[2])
        assert.is_nil(ok, "case " .. i)
        assert.truthy(err:find(c[3], 1, true), "case " .. i .. ": " .. tostring(err))
      end
      assert.are.equal(0, t:count())
    end)

    it("accept hostnames, IPv4, [IPv6] and zones, and every time form", function()
      local t = assert(trust.open(path))
      local addrs = {"localhost:1", "pi.local:4040", "10.0.0.1:65535", "[::1]:4040",
                     "[2001:db8::7]:80", "[fe80::1%wlan0]:4040"}
      for i, a in ipairs(addrs) do
        assert(t:add(keys.hex(key(i)), {label = "p" .. i, addr = a, added = 1714564800}))
        assert.are.equal(a, t:get("p" .. i).addr)
        assert.are.equal("2024-05-01T12:00:00Z", t:get("p" .. i).added)
      end
      assert(t:add(keys.hex(key(20)), {added = "2000-02-29T23:59:59Z"}))
      assert.are.equal("2000-02-29T23:59:59Z", t:get(keys.hex(key(20))).added)
      assert(t:add(keys.hex(key(21)), {added = "-"}))
      assert.is_nil(t:get(keys.hex(key(21))).added)
    end)

    it("keep addresses up to peernet.addr_max bytes whole, across a save, and refuse longer ones", function()
      assert.are.equal(259, MAX) -- a 253-byte DNS name, ':' and a 5-digit port
      assert.are.equal(67, #A.name(67))
      assert.are.equal(MAX, #A.name(MAX))
      assert.are.equal(69, #A.v6_zone)
      local t = assert(trust.open(path))
      local addrs = {A.name(67), A.name(MAX), A.v6_zone}
      for i, a in ipairs(addrs) do
        assert(t:add(keys.hex(key(i)), {addr = a}))
        assert.are.equal(a, t:get(keys.hex(key(i))).addr)
      end
      assert(t:save())
      local back = assert(trust.open(path))
      for i, a in ipairs(addrs) do assert.are.equal(a, back:get(keys.hex(key(i))).addr) end
      local ok, err = t:add(K4, {addr = A.name(MAX + 1)})
      assert.is_nil(ok)
      assert.truthy(err:find("address longer than " .. MAX .. " bytes", 1, true), err)
      assert.is_nil(t:get(K4))
    end)
  end)

  describe("the file a person edits", function()
    local original = table.concat({
      "# my peers\n",
      "\n",
      "   " .. K1 .. "\t\tphone   -\t 2024-01-02T03:04:05Z   # my phone\n",
      "# the laptop, for now\n",
      K2 .. " laptop host.lan:4040\n",
      "\t\n",
      keys.base64(key(3)) .. "   # in base64, as pasted\r\n",
      "# end\n",
    })

    it("keeps comments, blank lines and odd spacing byte for byte across add and remove", function()
      write_file(path, original)
      local t = assert(trust.open(path))
      assert.are.equal(3, t:count())
      assert.are.equal(K3, t:get(keys.base64url(key(3))).key)
      assert(t:add(K4, {label = "tablet", added = "2024-05-01T12:00:00Z"}))
      assert(t:remove("laptop"))
      assert(t:save())
      local want = original:gsub(K2 .. " laptop host.lan:4040\n", "", 1)
          .. K4 .. " tablet - 2024-05-01T12:00:00Z\n"
      assert.are.equal(want, read_file(path))
      assert.are.equal("600", mode_of(path))
      assert.are.equal("trust.list", names_in(dir))
    end)

    it("saves without any change byte for byte", function()
      write_file(path, original .. "# no newline at the end")
      local t = assert(trust.open(path))
      assert(t:save())
      assert.are.equal(original .. "# no newline at the end", read_file(path))
    end)

    it("rewrites only a changed entry's line, in hex, keeping its comment", function()
      write_file(path, original)
      local t = assert(trust.open(path))
      assert(t:add(K3, {label = "desk"}))
      assert(t:save())
      local want = original:gsub(keys.base64(key(3)):gsub("%p", "%%%0") .. "   #",
                                 K3 .. " desk   #")
      assert.are.equal(want, read_file(path))
    end)

    it("ends an unterminated last line before appending", function()
      write_file(path, "# peers\n" .. K1)
      local t = assert(trust.open(path))
      assert(t:add(K2, {added = "-"}))
      assert(t:save())
      assert.are.equal("# peers\n" .. K1 .. "\n" .. K2 .. "\n", read_file(path))
    end)

    it("reports each malformed line with the file, the line number and the problem", function()
      local good = K1 .. " phone\n# a comment\n"
      local cases = {
        {"zz" .. K2:sub(3), "bad key"},
        {K2 .. " bad/label", "bad label"},
        {K2 .. " " .. K3, "reads as a key"},
        {K2 .. " - host.lan:99999", "port"},
        {K2 .. " - host.lan", "missing ':PORT'"},
        {K2 .. " - - 2024-13-01T00:00:00Z", "bad time"},
        {K2 .. " - - 2024-01-01T00:00:00", "bad time"},
        {K2 .. " a b:1 2024-01-01T00:00:00Z extra", "too many fields"},
        {K2 .. " # " .. string.rep("x", 1100), "longer than 1024 bytes"},
        {K2 .. " a\1b", "control character"},
        {K2 .. " - " .. A.name(MAX + 1), "address longer than " .. MAX .. " bytes"},
      }
      for i, c in ipairs(cases) do
        write_file(path, good .. c[1] .. "\n" .. K4 .. "\n")
        local t, err = trust.open(path)
        assert.is_nil(t, "case " .. i)
        assert.truthy(err:find(path .. ":3:", 1, true), "case " .. i .. ": " .. tostring(err))
        assert.truthy(err:find(c[2], 1, true), "case " .. i .. ": " .. tostring(err))
      end
    end)

    it("reads a line whose address is peernet.addr_max bytes whole", function()
      write_file(path, K1 .. " phone " .. A.name(MAX) .. "\n" .. K2 .. " - " .. A.name(67) .. "\n")
      local t = assert(trust.open(path))
      assert.are.equal(A.name(MAX), t:get("phone").addr)
      assert.are.equal(A.name(67), t:get(K2).addr)
    end)

    it("reports a key or label listed twice, naming both lines", function()
      write_file(path, K1 .. " phone\n\n" .. keys.base64(key(1)) .. " other\n")
      local t, err = trust.open(path)
      assert.is_nil(t)
      assert.truthy(err:find(path .. ":3:", 1, true))
      assert.truthy(err:find("already on line 1", 1, true))
      write_file(path, K1 .. " phone\n" .. K2 .. " laptop\n" .. K3 .. " phone\n")
      t, err = trust.open(path)
      assert.is_nil(t)
      assert.truthy(err:find(path .. ":3: label 'phone' is already on line 1", 1, true))
    end)

    it("is refused when larger than 1 MiB", function()
      local line = "#" .. string.rep("-", 98) .. "\n"
      write_file(path, string.rep(line, 10486)) -- 1048600 bytes
      local t, err = trust.open(path)
      assert.is_nil(t)
      assert.truthy(err:find(path .. " is 1048600 bytes", 1, true))
      assert.truthy(err:find("1048576", 1, true))
      write_file(path, string.rep(line, 10485))
      assert.truthy(trust.open(path))
    end)

    it("is refused when others can write it, or when it is a symlink", function()
      write_file(path, K1 .. "\n", "666")
      local t, err = trust.open(path)
      assert.is_nil(t)
      assert.truthy(err:find("writable by others (mode 0666); run: chmod 600 " .. path, 1, true))
      write_file(path, K1 .. "\n", "644")
      assert.truthy(trust.open(path))
      local link = dir .. "/link.list"
      assert(os.execute("ln -s " .. q(path) .. " " .. q(link)))
      t, err = trust.open(link)
      assert.is_nil(t)
      assert.truthy(err:find("symbolic link", 1, true))
    end)

    it("tells when it was changed on disk since it was loaded or saved", function()
      write_file(path, K1 .. " phone\n")
      local t = assert(trust.open(path))
      assert.is_false(t:changed_on_disk())
      assert(t:add(K2, {label = "laptop"}))
      assert(t:save())
      assert.is_false(t:changed_on_disk())
      local f = assert(io.open(path, "ab"))
      f:write(K3 .. " desk # added by hand\n")
      f:close()
      assert.is_true(t:changed_on_disk())
      local again = assert(trust.open(path))
      assert.is_false(again:changed_on_disk())
      assert.are.equal(K3, again:get("desk").key)
      os.remove(path)
      assert.is_true(again:changed_on_disk())
    end)

    it("notices a file created after a missing one was opened", function()
      local t = assert(trust.open(path))
      assert.is_false(t:changed_on_disk())
      write_file(path, K1 .. "\n")
      assert.is_true(t:changed_on_disk())
    end)
  end)
end)
