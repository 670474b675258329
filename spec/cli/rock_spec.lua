-- The rock (issue 15): `luarocks make --lua-version 5.4` of a copy of the
-- source tree into a temporary rock tree, then lua5.4 requires the module
-- from that tree (with Debian's luv beside it).
local S = require "support.shell"

local SRC = H.source_dir
local root


setup(function() root = H.tmpdir() end)
teardown(function() H.rmdir(root) end)

describe("luarocks make", function()
  it("builds and installs the peernet module into a rock tree; lua5.4 requires it", function()
    if S.run("command -v luarocks >/dev/null") ~= 0 then
      pending("no luarocks on this machine (Debian's luarocks package; scripts/setup installs it)")
      return
    end
    local v = H.read_file(SRC .. "/src/core/version.h"):match('#define PN_VERSION "([%d.]+)"')
    local rockspec = "rockspecs/peernet-" .. v .. "-1.rockspec"
    -- A copy of the tracked sources: luarocks builds in the tree (build.luarocks/),
    -- on one core: ctest runs another spec beside this one.
    local src, tree = root .. "/src", root .. "/tree"
    S.must("mkdir " .. H.q(src) .. " && cd " .. H.q(SRC) .. " && git ls-files -z --cached --others"
      .. " --exclude-standard | xargs -0 tar -cf - | tar -xf - -C " .. H.q(src))
    S.must("cd " .. H.q(src) .. " && CMAKE_BUILD_PARALLEL_LEVEL=1 luarocks make --lua-version 5.4 --tree "
      .. H.q(tree) .. " " .. rockspec)
    local out = S.must("cd / && eval \"$(luarocks --lua-version 5.4 --tree " .. H.q(tree) .. " path)\" && lua5.4 -e "
      .. H.q('local p = require "peernet"; require "luv"; '
        .. 'print(p.version, package.searchpath("peernet", package.cpath), p.keys.generate():public_hex())'))
    local version, path, key = out:match("^(%S+)\t(%S+)\t(%x+)\n$")
    assert.equal(v, version, out)
    assert.equal(tree .. "/lib/lua/5.4/peernet.so", path)
    assert.equal(64, #key)
    assert.truthy(S.must("luarocks --lua-version 5.4 --tree " .. H.q(tree) .. " list --porcelain")
      :find("peernet\t" .. v .. "-1\tinstalled", 1, true))
  end)
end)
