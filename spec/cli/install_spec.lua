-- Installed like real software (issue 15): `cmake --install` of this build
-- into a temporary prefix (and a DESTDIR), then what was installed runs:
-- the binary (two installed hosts call each other), lua5.4 with the
-- installed module, C programs built with pkg-config and find_package, the
-- man pages, the completion and the systemd unit. One install per file.
local uv = require "luv"
local peernet = require "peernet"
local N = require "support.net"
local C = require "support.cli"
local S = require "support.shell"

local SRC, BUILD = H.source_dir, H.build_dir
local root, prefix
-- Where the install put the .pc file, the CMake package and the module:
-- LIBDIR is lib/x86_64-linux-gnu in a build configured for /usr.
local pcdir, cmakedir, moddir



-- Every file under dir, relative, sorted.
-- The command names `peernet-host --help` lists.
local function command_names()
  local _, help = C.run { "--help" }
  local names = {}
  for line in help:match("\ncommands:\n(.-)\n\n"):gmatch("[^\n]+") do
    names[#names + 1] = assert(line:match("^  (%l+) "), line)
  end
  assert(#names >= 10, help)
  return names, help
end

local function files_under(dir)
  return S.must("cd " .. H.q(dir) .. " && find . -type f -o -type l | sed 's|^\\./||' | sort")
end

setup(function()
  root = H.tmpdir()
  prefix = root .. "/prefix"
  S.must("cmake --install " .. H.q(BUILD) .. " --prefix " .. H.q(prefix))
  C.bin = prefix .. "/bin/peernet-host"
  local function dir_of(name)
    return (S.must("find " .. H.q(prefix) .. " -name " .. name):match("^(.*)/[^/]+\n$"))
  end
  pcdir, cmakedir, moddir = dir_of("peernet.pc"), dir_of("peernetConfig.cmake"), dir_of("peernet.so")
end)

teardown(function()
  C.reap()
  for _ = 1, 10 do uv.run("nowait") end
  H.rmdir(root)
end)

describe("cmake --install", function()
  it("installs every part, the same under --prefix and under DESTDIR", function()
    local list = files_under(prefix)
    for _, want in ipairs {
      "bin/peernet-host", "include/peernet/peernet.h", "include/peernet/err.h",
      "include/peernet/limits.h", "include/peernet/options.h", "libpeernet.a", "peernet.pc",
      "cmake/peernet/peernetConfig.cmake", "cmake/peernet/peernetConfigVersion.cmake",
      "lua/5.4/peernet.so", "share/man/man1/peernet-host.1", "share/man/man7/peernet-scripts.7",
      "share/bash-completion/completions/peernet-host", "share/zsh/vendor-completions/_peernet-host",
      "lib/systemd/system/peernet-host.service", "lib/sysusers.d/peernet-host.conf",
      "share/doc/peernet-host/LICENSE", "share/doc/peernet-host/CHANGELOG.md",
      "share/doc/peernet-host/cli.md", "share/doc/peernet-host/scripts.md",
      "share/peernet-host/types/peernet.lua", "share/peernet-host/types/host.lua",
      "share/peernet-host/types/testing.lua", "share/doc/peernet-host/testing.md",
      "share/lua/5.4/peernet/testing.lua", "share/lua/5.4/peernet/testing/runner.lua",
    } do
      assert.truthy(list:find(want, 1, true), want .. " not installed; installed:\n" .. list)
    end
    -- The spec-only wire bindings and the benchmarks stay in the build.
    assert.falsy(list:find("peernet_wire", 1, true))
    assert.falsy(list:find("tcp_pingpong", 1, true))
    local dest = root .. "/dest"
    S.must("DESTDIR=" .. H.q(dest) .. " cmake --install " .. H.q(BUILD) .. " --prefix /opt/pn")
    assert.equal(list, files_under(dest .. "/opt/pn"))
    -- The unit names the binary under the prefix given at install time.
    assert.truthy(H.read_file(dest .. "/opt/pn/lib/systemd/system/peernet-host.service")
      :find("ExecStart=/opt/pn/bin/peernet-host serve", 1, true))
  end)

  it("one version: version.h, --version, peernet.pc, the CMake package, the rockspec, CHANGELOG", function()
    local v = S.version()
    assert.truthy(v)
    local code, out = C.run { "--version" }
    assert.equal(0, code)
    assert.truthy(out:find("peernet-host " .. v .. " ", 1, true), out)
    assert.truthy(H.read_file(SRC .. "/CMakeLists.txt"):find("project(peernet VERSION ${PN_VERSION}", 1, true))
    local pc = S.must("PKG_CONFIG_PATH=" .. H.q(pcdir) .. " pkg-config --modversion peernet")
    assert.equal(v, pc:gsub("%s+$", ""))
    assert.truthy(H.read_file(cmakedir .. "/peernetConfigVersion.cmake")
      :find('set(PACKAGE_VERSION "' .. v .. '")', 1, true))
    local rocks = S.must("ls " .. H.q(SRC .. "/rockspecs"))
    assert.equal("peernet-" .. v .. "-1.rockspec", rocks:gsub("%s+$", ""))
    assert.truthy(H.read_file(SRC .. "/rockspecs/peernet-" .. v .. "-1.rockspec")
      :find('version = "' .. v .. '-1"', 1, true))
    local top = H.read_file(SRC .. "/CHANGELOG.md"):match("\n## %[(%d[%d.]*)%]")
    assert.equal(v, top)
  end)

  it("the installed binary: init, id, and a call between two installed hosts", function()
    local a, b = root .. "/a", root .. "/b"
    local _, ka = C.init(a)
    local _, kb = C.init(b)
    local code, out = C.run { "--data-dir", a, "id" }
    assert.equal(0, code)
    assert.equal(ka, out:gsub("%s+$", ""))
    os.execute("mkdir -m 700 " .. H.q(a .. "/h"))
    H.write_file(a .. "/h/echo.lua", 'peernet.expose("echo", function(from, args) return args end)')
    assert.equal(0, (C.run { "--data-dir", a, "trust", "add", kb, "--label", "b" }))
    local server = C.spawn { "--data-dir", a, "serve", "--no-discovery", "--listen", "127.0.0.1:0",
      "--handlers", a .. "/h" }
    local port = C.expect(server, "serving %x+ on 127%.0%.0%.1:(%d+)\n")
    assert.equal(0, (C.run { "--data-dir", b, "trust", "add", ka, "--label", "a",
      "--addr", "127.0.0.1:" .. port }))
    local err
    code, out, err = C.run { "--data-dir", b, "call", "a", "echo", '{room = "kitchen"}' }
    assert.equal(0, code, err)
    assert.equal('{room = "kitchen"}\n', out)
    C.kill(server, "sigterm")
    C.wait(server)
    assert.equal(0, server.code)
  end)

  it("serve tells the service manager it is ready once it listens (sd_notify)", function()
    if not peernet.has_systemd then
      pending("built without libsystemd (libsystemd-dev): peernet.notify is a no-op")
      return
    end
    -- A service manager's notify socket: a unix datagram socket that python3 reads.
    local sock = root .. "/notify.sock"
    local out = { text = "", open = true }
    local pipe = uv.new_pipe(false)
    local env = {} -- python3 without the suite's LD_PRELOAD (support.shell says why)
    for k, v in pairs(uv.os_environ()) do
      if k ~= "LD_PRELOAD" then env[#env + 1] = k .. "=" .. v end
    end
    local handle
    handle = assert(uv.spawn("python3", { args = { "-c", [[
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    m = s.recv(4096).decode()
    print(m.replace("\n", " "), flush=True)
    if "STOPPING=1" in m:
        break
]], sock }, stdio = { nil, pipe, 2 }, env = env }, function() handle:close() end))
    pipe:read_start(function(_, d) if d then out.text = out.text .. d else pipe:close() out.open = false end end)
    assert(N.wait(function() return out.text:find("bound") end, 10000), "no notify socket")
    local dir = root .. "/n"
    C.init(dir)
    local server = C.spawn({ "--data-dir", dir, "serve", "--no-discovery", "--listen", "127.0.0.1:0" },
      { env = { NOTIFY_SOCKET = sock } })
    C.expect(server, "serving ")
    assert(N.wait(function() return out.text:find("READY=1") end, 10000), out.text)
    C.kill(server, "sigterm")
    C.wait(server)
    assert(N.wait(function() return not out.open end, 10000), out.text)
    assert.truthy(out.text:find("STOPPING=1"), out.text)
    assert.equal(0, server.code)
  end)

  it("lua5.4 loads the installed module, next to luv", function()
    local out = S.must("cd / && LUA_CPATH=" .. H.q(moddir .. "/?.so;;") .. " lua5.4 -e "
      .. H.q('local p = require "peernet"; local uv = require "luv"; '
        .. 'print(p.version, package.searchpath("peernet", package.cpath), uv.version_string())'),
      { asan = true })
    assert.truthy(out:find(S.version() .. "\t" .. moddir .. "/peernet.so\t", 1, true), out)
  end)

  it("lua5.4 (busted) finds the installed peernet.testing and its runner", function()
    local lmod = prefix .. "/share/lua/5.4"
    local out = S.must("cd / && LUA_CPATH=" .. H.q(moddir .. "/?.so;;") .. " LUA_PATH="
      .. H.q(lmod .. "/?.lua;;") .. " lua5.4 -e "
      .. H.q('local T = require "peernet.testing"; require "peernet.testing.runner"; '
        .. 'print(package.searchpath("peernet.testing", package.path), #T.key())'),
      { asan = true })
    assert.equal(lmod .. "/peernet/testing.lua\t64", (out:gsub("%s+$", "")))
  end)

  -- A C program of a libpeernet user: creates a host on a free port, closes it.
  local program = [[
#include <stdio.h>
#include <sodium.h>
#include <uv.h>
#include <peernet/peernet.h>

static void closed(void *ud) { *(int *)ud = 1; }

int main(void) {
    if (sodium_init() < 0) return 1;
    uint8_t secret[32];
    randombytes_buf(secret, sizeof secret);
    pn_host_config c;
    pn_host_config_init(&c);
    c.secret = secret;
    c.listen = "127.0.0.1:0";
    pn_err e = {0};
    pn_host *h = pn_host_new(uv_default_loop(), &c, &e);
    if (!h) { fprintf(stderr, "%s\n", e.msg); return 1; }
    printf("listening on %d\n", pn_host_port(h));
    int done = 0;
    pn_host_close(h, closed, &done);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    return done ? 0 : 1;
}
]]

  it("a C program builds with pkg-config --cflags --libs peernet and creates a host", function()
    local dir = root .. "/cprog"
    os.execute("mkdir -p " .. H.q(dir))
    H.write_file(dir .. "/main.c", program)
    S.must("cd " .. H.q(dir) .. " && PKG_CONFIG_PATH=" .. H.q(pcdir)
      .. " cc -Wall -Werror -o main main.c $(PKG_CONFIG_PATH=" .. H.q(pcdir)
      .. " pkg-config --cflags --libs peernet)")
    local out = S.must(H.q(dir .. "/main"))
    assert.truthy(out:match("^listening on [1-9]%d*\n$"), out)
  end)

  it("a C program builds with find_package(peernet) and creates a host", function()
    local dir = root .. "/cmakeprog"
    os.execute("mkdir -p " .. H.q(dir))
    H.write_file(dir .. "/main.c", program)
    H.write_file(dir .. "/CMakeLists.txt", [[
cmake_minimum_required(VERSION 3.18)
project(user C)
find_package(peernet 0.1 REQUIRED)
add_executable(main main.c)
target_link_libraries(main PRIVATE peernet::peernet)
]])
    S.must("cmake -S " .. H.q(dir) .. " -B " .. H.q(dir .. "/b") .. " -DCMAKE_PREFIX_PATH="
      .. H.q(prefix) .. " >/dev/null && cmake --build " .. H.q(dir .. "/b") .. " >/dev/null")
    local out = S.must(H.q(dir .. "/b/main"))
    assert.truthy(out:match("^listening on [1-9]%d*\n$"), out)
  end)
end)

describe("man pages", function()
  it("render without warnings", function()
    for _, page in ipairs { "man1/peernet-host.1", "man7/peernet-scripts.7" } do
      local _, warnings = S.run("MANWIDTH=80 man --warnings -l " .. H.q(prefix .. "/share/man/" .. page)
        .. " 2>&1 >/dev/null")
      assert.equal("", warnings, page)
      local text = S.must("MANWIDTH=80 man -l " .. H.q(prefix .. "/share/man/" .. page) .. " 2>/dev/null")
      assert.truthy(#text > 5000, page)
    end
  end)

  it("peernet-host(1) has every command, option, exit code and environment variable", function()
    local text = S.must("MANWIDTH=200 man -l " .. H.q(prefix .. "/share/man/man1/peernet-host.1")
      .. " 2>/dev/null")
    for _, section in ipairs { "NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "EXIT STATUS",
      "ENVIRONMENT", "SERVICE", "SEE ALSO" } do
      assert.truthy(text:find("\n" .. section .. "\n", 1, true), section)
    end
    -- Subsection headings (.SS) are indented by three spaces: "   call, send".
    local subsections = {}
    for heading in text:gmatch("\n   (%S[^\n]*)") do
      for name in heading:gmatch("[^, ]+") do subsections[name] = true end
    end
    local names, help = command_names()
    for _, name in ipairs(names) do
      assert.truthy(subsections[name], "no section for " .. name)
      local _, usage = C.run { "help", name }
      for opt in usage:gmatch("%-%-[%l-]+") do
        assert.truthy(text:find(opt, 1, true), name .. " " .. opt)
      end
    end
    for opt in help:gmatch("%-%-[%l-]+") do
      assert.truthy(text:find(opt, 1, true), "--help's " .. opt)
    end
    for code in help:gmatch("\n  (%d)  ") do
      assert.truthy(text:find("\n       " .. code .. " ", 1, true), "exit code " .. code)
    end
    local env = text:match("\nENVIRONMENT\n(.-)\n%u")
    for var in H.read_file(SRC .. "/docs/cli.md"):gmatch("PEERNET_[%u_]+") do
      assert.truthy(env:find(var, 1, true), var .. " not in ENVIRONMENT")
    end
  end)

  it("peernet-scripts(7) has every function of the scripts' API", function()
    local text = S.must("MANWIDTH=200 man -l " .. H.q(prefix .. "/share/man/man7/peernet-scripts.7")
      .. " 2>/dev/null")
    local doc = H.read_file(SRC .. "/docs/scripts.md")
    for fn in doc:gmatch("(peernet%.[%w_.]+)%(") do
      assert.truthy(text:find(fn, 1, true), fn)
    end
    for _, fn in ipairs { "host.exec", "host.read", "host.write", "beam_admin" } do
      assert.truthy(text:find(fn, 1, true), fn)
    end
  end)
end)

describe("the bash completion", function()
  it("completes the installed binary's commands and each command's options", function()
    local script = H.q(prefix .. "/share/bash-completion/completions/peernet-host")
    local function complete(...)
      local words = {}
      for i, w in ipairs { C.bin, ... } do words[i] = H.q(w) end
      return S.must("bash -c " .. H.q("source " .. script .. "; COMP_WORDS=(" .. table.concat(words, " ")
        .. "); COMP_CWORD=" .. (#words - 1) .. "; _peernet_host; printf '%s\\n' \"${COMPREPLY[@]}\""))
    end
    local got = complete("")
    for _, name in ipairs(command_names()) do
      assert.truthy(got:find("\n" .. name .. "\n", 1, true) or got:find("^" .. name .. "\n"), name)
    end
    -- serve's options and the global ones, as the one help table lists them
    local help = require "peernet.cli.help"
    local want = {}
    for _, o in ipairs(help.GLOBAL) do want[#want + 1] = "--" .. o.name end
    for _, o in ipairs(help.find("serve").options) do want[#want + 1] = "--" .. o.name end
    table.sort(want)
    assert.equal(table.concat(want, "\n") .. "\n", complete("serve", "--"))
    assert.equal("add\nrm\nls\n", complete("trust", ""))
  end)

  it("the zsh completion parses (when zsh is here)", function()
    if S.run("command -v zsh >/dev/null") ~= 0 then
      pending("no zsh on this machine")
      return
    end
    S.must("zsh -n " .. H.q(prefix .. "/share/zsh/vendor-completions/_peernet-host"))
  end)
end)

describe("the systemd unit", function()
  local unit
  before_each(function() unit = prefix .. "/lib/systemd/system/peernet-host.service" end)

  it("passes systemd-analyze verify", function()
    if S.run("command -v systemd-analyze >/dev/null") ~= 0 then
      pending("no systemd-analyze on this machine (Debian's systemd package)")
      return
    end
    -- verify runs the unit's Documentation= man pages: the installed ones.
    local code, out = S.run("MANPATH=" .. H.q(prefix .. "/share/man") .. " systemd-analyze verify " .. H.q(unit))
    assert.equal(0, code, out)
    assert.equal("", out)
  end)

  it("serves the data dir under StateDirectory=, sandboxed, Type=notify, reload by SIGHUP", function()
    local text = H.read_file(unit)
    -- notify when this build can (libsystemd), else systemd would wait for READY=1 in vain.
    local notify = peernet.has_systemd
    assert.truthy(text:find(notify and "\nType=notify\n" or "\nType=exec\n", 1, true))
    for _, line in ipairs {
      "StateDirectory=peernet", "Environment=PEERNET_HOME=/var/lib/peernet",
      "User=peernet", "ExecStart=" .. prefix .. "/bin/peernet-host serve",
      "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes", "ProtectSystem=strict",
      "ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n",
      "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
      "SystemCallFilter=@system-service",
    } do
      assert.truthy(text:find("\n" .. line, 1, true), line)
    end
    -- The user it runs as is made by systemd-sysusers, with the data dir as home.
    assert.truthy(H.read_file(prefix .. "/lib/sysusers.d/peernet-host.conf")
      :find('\nu peernet - "PeerNet host" /var/lib/peernet\n', 1, true))
  end)
end)
