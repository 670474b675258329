-- The Debian package (issue 15): `cpack -G DEB` of this build, its contents
-- and control fields, and, as root (CI's throwaway machine), `dpkg -i` of
-- it, the installed program run, and the package purged again (the user peernet stays, as Debian does).
local S = require "support.shell"

local SRC, BUILD = H.source_dir, H.build_dir
local root, deb



setup(function()
  root = H.tmpdir()
  S.must("cpack --config " .. H.q(BUILD .. "/CPackConfig.cmake") .. " -G DEB -B " .. H.q(root))
  deb = S.must("ls " .. H.q(root) .. "/*.deb"):gsub("%s+$", "")
end)

teardown(function() H.rmdir(root) end)

describe("cpack -G DEB", function()
  it("is named and versioned from version.h, with Depends computed from the binaries", function()
    local v = S.version()
    assert.truthy(deb:find("/peernet%-host_" .. v:gsub("%.", "%%.") .. "_%w+%.deb$"), deb)
    assert.equal(v, S.must("dpkg-deb -f " .. H.q(deb) .. " Version"):gsub("%s+$", ""))
    assert.equal("peernet-host", S.must("dpkg-deb -f " .. H.q(deb) .. " Package"):gsub("%s+$", ""))
    local depends = S.must("dpkg-deb -f " .. H.q(deb) .. " Depends")
    -- dpkg-shlibdeps found them: none is listed by hand in packaging.cmake.
    for _, lib in ipairs { "libc6", "liblua5.4-0", "libsodium23", "libuv1", "lua-luv", "libqrencode4" } do
      assert.truthy(depends:find(lib, 1, true), lib .. " not in Depends: " .. depends)
    end
  end)

  it("holds the binary, the module, the library, the headers, man pages, completions, the unit", function()
    local list = S.must("dpkg-deb -c " .. H.q(deb))
    for _, want in ipairs {
      "./usr/bin/peernet-host", "/lua/5.4/peernet.so", "/libpeernet.a", "/pkgconfig/peernet.pc",
      "/cmake/peernet/peernetConfig.cmake", "./usr/include/peernet/peernet.h",
      "./usr/share/man/man1/peernet-host.1", "./usr/share/man/man7/peernet-scripts.7",
      "./usr/share/bash-completion/completions/peernet-host",
      "./usr/share/zsh/vendor-completions/_peernet-host",
      "./usr/lib/systemd/system/peernet-host.service", "./usr/lib/sysusers.d/peernet-host.conf",
      "./usr/share/doc/peernet-host/LICENSE", "./usr/share/peernet-host/types/peernet.lua",
    } do
      assert.truthy(list:find(want, 1, true), want .. " not in the package:\n" .. list)
    end
    -- Installed, not enabled: no symlink into a .wants directory.
    assert.falsy(list:find(".wants/", 1, true))
    local unit = S.must("dpkg-deb --fsys-tarfile " .. H.q(deb)
      .. " | tar -xOf - ./usr/lib/systemd/system/peernet-host.service")
    assert.truthy(unit:find("\nExecStart=/usr/bin/peernet-host serve\n", 1, true), unit)
  end)

  it("has maintainer scripts that stop the service on remove, restart it on upgrade, make the user", function()
    local info = S.must("dpkg-deb -I " .. H.q(deb))
    for _, script in ipairs { "postinst", "prerm", "postrm" } do
      assert.truthy(info:find("%s" .. script .. "%s"), script .. " not in the control archive:\n" .. info)
    end
    local dir = H.tmpdir()
    S.must("dpkg-deb -e " .. H.q(deb) .. " " .. H.q(dir))
    local prerm = H.read_file(dir .. "/prerm")
    assert.truthy(prerm:find('"$1" = remove', 1, true), prerm)
    assert.truthy(prerm:find("stop peernet-host.service", 1, true), prerm)
    local postinst = H.read_file(dir .. "/postinst")
    assert.truthy(postinst:find("try-restart peernet-host.service", 1, true), postinst)
    for _, tool in ipairs { "systemd-sysusers", "adduser", "useradd" } do
      assert.truthy(postinst:find(tool, 1, true), tool .. " not tried in postinst")
    end
    -- Both run under sh with no systemd (this machine may have none).
    for _, script in ipairs { "postinst", "prerm", "postrm" } do
      S.must("sh -n " .. H.q(dir .. "/" .. script))
    end
    H.rmdir(dir)
  end)

  -- dpkg refuses at once while another dpkg or apt holds the machine's
  -- lock (a package install elsewhere on the machine): wait for the lock
  -- to be free, up to a minute, then run it.
  local function dpkg(args)
    return S.must("for i in $(seq 120); do out=$(DEBIAN_FRONTEND=noninteractive dpkg " .. args
      .. " 2>&1) && { printf '%s' \"$out\"; exit 0; }; case $out in *lock*) sleep 0.5 ;; "
      .. "*) printf '%s\\n' \"$out\" >&2; exit 1 ;; esac; done; echo 'dpkg: lock held for a minute' >&2; exit 1")
  end

  it("dpkg -i installs it, peernet-host --version runs, dpkg --purge removes it", function()
    if S.must("id -u"):gsub("%s+$", "") ~= "0" then
      pending("dpkg -i needs root (CI runs as root on a throwaway machine)")
      return
    end
    local _, status = S.run("dpkg-query -W -f='${Status}' peernet-host")
    if status:find(" installed", 1, true) then
      pending("a peernet-host package is already installed here: not replacing it")
      return
    end
    local ok, err = pcall(function()
      dpkg("-i " .. H.q(deb))
      local out = S.must("/usr/bin/peernet-host --version")
      assert.truthy(out:find("peernet-host " .. S.version() .. " ", 1, true), out)
      out = S.must("cd / && lua5.4 -e 'print(require(\"peernet\").version)'", { asan = true })
      assert.equal(S.version() .. "\n", out)
      assert.truthy(S.must("man -w peernet-host"):find("/usr/share/man/man1/peernet-host.1", 1, true))
      -- postinst made the service's user (or it was there already).
      assert.truthy(S.must("getent passwd peernet"):find("/var/lib/peernet", 1, true))
    end)
    dpkg("--purge peernet-host")
    assert(ok, err)
    assert.equal(1, (S.run("test -e /usr/bin/peernet-host")))
  end)
end)
