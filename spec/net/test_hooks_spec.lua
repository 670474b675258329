-- The test hooks (src/net/test_hooks.h) are for specs only: peernet.so
-- honours host.new's test_ephemeral / test_legacy_atoms and h:ping's nonce
-- only once the spec-only module peernet_wire is loaded, and the modules
-- export nothing but their luaopen_* functions.
local function lua_program(code)
  local lua = H.sh("command -v lua5.4")
  local script = H.tmpdir() .. "/prog.lua"
  H.write_file(script, "package.cpath = " .. ("%q"):format(H.build_dir .. "/?.so;" .. package.cpath)
    .. "\n" .. code)
  local out = H.sh(H.q(lua) .. " " .. H.q(script) .. " 2>&1; echo rc=$?")
  return out
end

describe("test hooks", function()
  it("a plain lua5.4 program that sets test_ephemeral is refused, clearly", function()
    local out = lua_program([[
      local peernet = require "peernet"
      local k = peernet.keys.generate()
      local ok, err = pcall(peernet.host.new, { secret = k:secret(), listen = false,
        test_ephemeral = string.rep("\1", 32) })
      print(ok, err)
      ok, err = pcall(peernet.host.new, { secret = k:secret(), listen = false, test_legacy_atoms = true })
      print(ok, err)
      local h = assert(peernet.host.new { secret = k:secret(), listen = false })
      ok, err = pcall(h.ping, h, k:public_hex(), string.rep("\0", 16))
      print(ok, err)
      h:close()
    ]])
    assert.matches("rc=0", out)
    local refusals = 0
    for line in out:gmatch("false\t[^\n]*") do
      refusals = refusals + 1
      assert.matches("test hooks, only for specs %(require \"peernet_wire\" first%)", line)
    end
    assert.equal(3, refusals, out)
    assert.matches("host.new: test_ephemeral and test_legacy_atoms: test hooks", out)
    assert.matches("h:ping: a fixed nonce: test hooks", out)
  end)

  it("with peernet_wire loaded a host takes them", function()
    local out = lua_program([[
      local peernet = require "peernet"
      require "peernet_wire"
      local k = peernet.keys.generate()
      local h = assert(peernet.host.new { secret = k:secret(), listen = false,
        test_ephemeral = string.rep("\1", 32), test_legacy_atoms = true })
      print("made")
      h:close()
    ]])
    assert.matches("made\nrc=0", out)
  end)

  it("peernet.so and peernet_wire.so export only luaopen_*", function()
    if H.sh("command -v nm || true") == "" then
      pending("no nm (binutils)")
      return
    end
    for _, so in ipairs { "peernet.so", "peernet_wire.so" } do
      local syms = H.sh("nm -D --defined-only " .. H.q(H.build_dir .. "/" .. so) .. " | awk '$2 ~ /[TDBR]/ {print $3}'")
      local n = 0
      for name in syms:gmatch("%S+") do
        n = n + 1
        assert.matches("^luaopen_", name, so)
      end
      assert.is_true(n >= 1, so)
    end
  end)
end)
