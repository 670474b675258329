-- peernet.keys: identity keypairs, the identity.keys file and key text forms.
local peernet = require "peernet"
local keys = peernet.keys

local sh, q, write_file, read_file = H.sh, H.q, H.write_file, H.read_file
local mode_of, names_in = H.mode_of, H.names_in

-- SHA-256 computed outside the module, by coreutils.
local function sha256_hex(data, dir)
  local p = dir .. "/sha-input"
  write_file(p, data)
  local out = sh("sha256sum " .. q(p))
  os.remove(p)
  return out:match("^(%x+)")
end

local vec = H.vector_file("peernet_wire_v1.json").keys

-- A key file image built here, independently of the module.
local function image(pub, priv, o)
  o = o or {}
  return (o.magic or "PNID") .. string.char(o.version or 2) .. string.char(o.len1 or 32) .. pub
      .. string.char(o.len2 or 32) .. priv
end

describe("peernet.keys", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  describe("the wire vector's keys", function()
    it("derive the vector's public keys from their private keys", function()
      local kp = assert(keys.from_secret(H.unhex(vec.initiator_static_priv)))
      assert.are.equal(vec.initiator_static_pub, kp:public_hex())
      assert.are.equal(H.unhex(vec.initiator_static_pub), kp:public())
      local r = assert(keys.from_secret(H.unhex(vec.responder_static_priv)))
      assert.are.equal(vec.responder_static_pub, r:public_hex())
    end)

    it("load from a key file written byte by byte in the PNID layout", function()
      local path = dir .. "/identity.keys"
      write_file(path, image(H.unhex(vec.initiator_static_pub), H.unhex(vec.initiator_static_priv)))
      local kp = assert(keys.load(path))
      assert.are.equal(vec.initiator_static_pub, kp:public_hex())
      assert.are.equal(vec.initiator_static_priv, H.hex(kp:secret()))
    end)
  end)

  describe("generate", function()
    it("makes distinct keypairs whose public key is derived from the secret", function()
      local a, b = keys.generate(), keys.generate()
      assert.are_not.equal(a:public(), b:public())
      assert.are_not.equal(a:secret(), b:secret())
      assert.are.equal(32, #a:public())
      assert.are.equal(32, #a:secret())
      assert.are.equal(a:public(), keys.from_secret(a:secret()):public())
    end)

    it("never shows the secret when printed", function()
      local kp = keys.from_secret(H.unhex(vec.initiator_static_priv))
      local s = tostring(kp)
      assert.truthy(s:find(vec.initiator_static_pub, 1, true))
      assert.falsy(s:find(vec.initiator_static_priv, 1, true))
    end)

    it("refuses a secret that is not 32 bytes", function()
      local kp, err = keys.from_secret(string.rep("\1", 31))
      assert.is_nil(kp)
      assert.truthy(err:find("32 bytes", 1, true))
    end)
  end)

  describe("the key file", function()
    it("round-trips through save and load", function()
      local kp = keys.generate()
      local path = dir .. "/identity.keys"
      assert.is_true(kp:save(path))
      local back = assert(keys.load(path))
      assert.are.equal(kp:public(), back:public())
      assert.are.equal(kp:secret(), back:secret())
    end)

    it("is exactly 71 bytes: PNID, version 2, length-prefixed public then private key", function()
      local kp = keys.from_secret(H.unhex(vec.initiator_static_priv))
      local path = dir .. "/identity.keys"
      assert(kp:save(path))
      local bytes = read_file(path)
      assert.are.equal(71, #bytes)
      assert.are.equal(image(H.unhex(vec.initiator_static_pub), H.unhex(vec.initiator_static_priv)),
                       bytes)
    end)

    it("is saved 0600 in a directory created 0700, parents included", function()
      local path = dir .. "/a/b/identity.keys"
      assert(keys.generate():save(path))
      assert.are.equal("600", mode_of(path))
      assert.are.equal("700", mode_of(dir .. "/a/b"))
      assert.are.equal("700", mode_of(dir .. "/a"))
    end)

    it("replaces an existing file and leaves no temp file behind", function()
      local path = dir .. "/identity.keys"
      assert(keys.generate():save(path))
      local second = keys.generate()
      assert(second:save(path))
      assert.are.equal("identity.keys", names_in(dir))
      assert.are.equal(second:public(), assert(keys.load(path)):public())
    end)

    it("refuses to save into a directory others can write", function()
      assert(os.execute("chmod 777 " .. q(dir)))
      local ok, err = keys.generate():save(dir .. "/identity.keys")
      assert.is_nil(ok)
      assert.truthy(err:find("writable by others", 1, true))
      assert.truthy(err:find("chmod 700 " .. dir, 1, true))
      assert.are.equal("", names_in(dir))
    end)

    it("is refused when group or others can read it, with the chmod that fixes it", function()
      local path = dir .. "/identity.keys"
      assert(keys.generate():save(path))
      assert(os.execute("chmod 644 " .. q(path)))
      local kp, err = keys.load(path)
      assert.is_nil(kp)
      assert.truthy(err:find("readable by others (mode 0644)", 1, true))
      assert.truthy(err:find("run: chmod 600 " .. path, 1, true))
      assert(os.execute("chmod 620 " .. q(path)))
      kp, err = keys.load(path)
      assert.is_nil(kp)
      assert.truthy(err:find("writable by others (mode 0620)", 1, true))
      assert(os.execute("chmod 600 " .. q(path)))
      assert.truthy(keys.load(path))
    end)

    it("is refused when damaged, with a distinct message for each kind of damage", function()
      local pub, priv = H.unhex(vec.initiator_static_pub), H.unhex(vec.initiator_static_priv)
      local other = H.unhex(vec.responder_static_pub)
      local good = image(pub, priv)
      local cases = {
        {"truncated", good:sub(1, 70), "truncated"},
        {"empty", "", "truncated"},
        {"oversized", good .. "\n", "too large"},
        {"huge", good .. string.rep("x", 100000), "too large"},
        {"wrong magic", image(pub, priv, {magic = "PNIX"}), "not a PeerNet identity file"},
        {"wrong version", image(pub, priv, {version = 1}), "version 1"},
        {"bad length byte", image(pub, priv, {len2 = 31}), "key length"},
        {"mismatched keys", image(other, priv), "public key does not match"},
      }
      local seen = {}
      for _, c in ipairs(cases) do
        local path = dir .. "/" .. c[1]:gsub(" ", "_") .. ".keys"
        write_file(path, c[2])
        local kp, err = keys.load(path)
        assert.is_nil(kp, c[1])
        assert.truthy(err:find(c[3], 1, true), c[1] .. ": " .. tostring(err))
        assert.truthy(err:find(path, 1, true), c[1] .. " names the file")
        seen[err:gsub(path, "")] = true
      end
      local distinct = 0
      for _ in pairs(seen) do distinct = distinct + 1 end
      assert.are.equal(#cases, distinct)
    end)

    it("calls a public/private mismatch a corrupt key file", function()
      local path = dir .. "/identity.keys"
      local priv = H.unhex(vec.initiator_static_priv)
      write_file(path, image(H.unhex(vec.responder_static_pub), priv))
      local _, err = keys.load(path)
      assert.truthy(err:find("corrupt key file", 1, true))
    end)

    it("is refused when it is a symlink, a directory or missing", function()
      local real = dir .. "/real.keys"
      assert(keys.generate():save(real))
      local link = dir .. "/link.keys"
      assert(os.execute("ln -s " .. q(real) .. " " .. q(link)))
      local kp, err = keys.load(link)
      assert.is_nil(kp)
      assert.truthy(err:find("symbolic link", 1, true))
      assert(os.execute("mkdir -m 700 " .. q(dir .. "/d.keys")))
      kp, err = keys.load(dir .. "/d.keys")
      assert.is_nil(kp)
      assert.truthy(err:find("not a regular file", 1, true))
      kp, err = keys.load(dir .. "/nothing.keys")
      assert.is_nil(kp)
      assert.truthy(err:find("does not exist", 1, true))
    end)
  end)

  describe("text forms", function()
    local pub = H.unhex(vec.initiator_static_pub)

    it("formats hex in lowercase, base64 padded and base64url unpadded", function()
      assert.are.equal(vec.initiator_static_pub, keys.hex(pub))
      local b64, url = keys.base64(pub), keys.base64url(pub)
      assert.are.equal(44, #b64)
      assert.are.equal("=", b64:sub(-1))
      assert.are.equal(43, #url)
      assert.falsy(url:find("[+/=]"))
      assert.are.equal((b64:gsub("=", ""):gsub("%+", "-"):gsub("/", "_")), url)
    end)

    it("parses hex in lower, upper and mixed case", function()
      local hex = vec.initiator_static_pub
      assert.are.equal(pub, keys.parse(hex))
      assert.are.equal(pub, keys.parse(hex:upper()))
      local mixed = hex:gsub("()(%x)", function(i, c) return i % 2 == 0 and c:upper() or c end)
      assert.are_not.equal(hex, mixed)
      assert.are.equal(pub, keys.parse(mixed))
    end)

    it("parses base64 and base64url, with and without padding", function()
      local b64, url = keys.base64(pub), keys.base64url(pub)
      assert.truthy(b64:find("[+/]")) -- the vector key exercises the differing characters
      assert.are.equal(pub, keys.parse(b64))
      assert.are.equal(pub, keys.parse((b64:gsub("=", ""))))
      assert.are.equal(pub, keys.parse(url))
      assert.are.equal(pub, keys.parse(url .. "="))
    end)

    it("round-trips random keys through every form", function()
      for _ = 1, 50 do
        local k = keys.generate():public()
        assert.are.equal(k, keys.parse(keys.hex(k)))
        assert.are.equal(k, keys.parse(keys.base64(k)))
        assert.are.equal(k, keys.parse(keys.base64url(k)))
      end
    end)

    it("refuses wrong lengths", function()
      local hex = vec.initiator_static_pub
      for _, s in ipairs({"", "ab", hex:sub(1, 62), hex:sub(1, 63), hex .. "0", hex .. "00",
                          keys.base64(pub) .. "=", keys.base64url(pub):sub(1, 42)}) do
        local k, err = keys.parse(s)
        assert.is_nil(k, s)
        assert.truthy(err:find("not a key", 1, true))
      end
    end)

    it("refuses bad characters, spaces, mixed alphabets and non-canonical base64", function()
      local hex, b64 = vec.initiator_static_pub, keys.base64(pub)
      local url = keys.base64url(pub)
      local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
      local last = alphabet:find(url:sub(-1), 1, true) - 1
      local noncanon = url:sub(1, -2) .. alphabet:sub((last ~ 1) + 1, (last ~ 1) + 1)
      local bad = {
        "g" .. hex:sub(2),                -- not hex
        " " .. hex:sub(2),                -- leading space
        hex:sub(1, 63) .. "\n",           -- trailing newline
        hex:sub(1, 32) .. "\0" .. hex:sub(34),
        b64:gsub("%+", "-", 1),           -- '-' and '+' in one key
        "*" .. b64:sub(2),
        noncanon,                         -- trailing bits set
        url:sub(1, 42) .. "=",            -- padding in the wrong place
      }
      for i, s in ipairs(bad) do
        local k, err = keys.parse(s)
        assert.is_nil(k, "case " .. i)
        assert.truthy(err:find("not a key", 1, true))
      end
    end)

    it("raises for a raw key that is not 32 bytes", function()
      assert.has_error(function() keys.hex("abc") end)
      assert.has_error(function() keys.base64(string.rep("a", 33)) end)
      assert.has_error(function() keys.fingerprint(vec.initiator_static_pub) end)
    end)
  end)

  describe("fingerprints", function()
    it("are the first 8 bytes of SHA-256(public key) as 16 hex digits", function()
      local pub = H.unhex(vec.initiator_static_pub)
      local want = sha256_hex(pub, dir):sub(1, 16)
      assert.are.equal(want, keys.fingerprint(pub))
      local kp = keys.from_secret(H.unhex(vec.initiator_static_priv))
      assert.are.equal(want, kp:fingerprint())
      local other = keys.generate()
      assert.are.equal(sha256_hex(other:public(), dir):sub(1, 16), other:fingerprint())
    end)
  end)
end)
