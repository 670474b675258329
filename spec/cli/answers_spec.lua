-- Clear answers (issue 14): what a user sees from the real CLI when ARGS,
-- a key, a data dir or a script is wrong, what --json prints for success
-- and every failure, the waiting line on a terminal, the strangers `peers`
-- lists and an `id --qr` a scanner reads on light and dark terminals.
local uv = require "luv"
local peernet = require "peernet"
local json = require "dkjson"
local format = require "peernet.format"
local N = require "support.net"
local C = require "support.cli"

local dd = C.dd

-- One JSON value; JSON null stays visible as json.null.
local function decode(s)
  local v, _, e = json.decode(s, 1, json.null)
  assert(v ~= nil, "not JSON: " .. tostring(s) .. " (" .. tostring(e) .. ")")
  return v
end

-- stdout holds exactly one line: one JSON object.
local function one_object(out)
  assert.matches("^[^\n]*\n$", out)
  local v = decode(out)
  assert.is_table(v)
  return v
end

local tmpdir = C.tmpdir

teardown(C.cleanup)

describe("ARGS", function()
  local dir
  setup(function() dir = C.init(tmpdir() .. "/d") end)

  it("a bare word is an error that shows the quoted form, not a nil sent with exit 0", function()
    local code, out, err = C.run(dd(dir, "call", "pi", "lights.set", "on"))
    assert.equal(2, code)
    assert.equal("", out)
    assert.equal("peernet-host: ARGS: undefined name 'on' (text is written quoted: '\"on\"')\n", err)
    code, _, err = C.run(dd(dir, "call", "pi", "lights.set", "{room = kitchen}"))
    assert.equal(2, code)
    assert.matches("undefined name 'kitchen'", err)
  end)

  it("nesting 300 deep says what nesting 100 deep says", function()
    local _, _, at100 = C.run(dd(dir, "call", "pi", "h", ("{"):rep(100) .. ("}"):rep(100)))
    local code, _, at300 = C.run(dd(dir, "call", "pi", "h", ("{"):rep(300) .. ("}"):rep(300)))
    assert.equal(2, code)
    assert.equal("peernet-host: ARGS: value nested deeper than 64 levels\n", at100)
    assert.equal(at100, at300)
    local _, _, tuples = C.run(dd(dir, "call", "pi", "h", ("tuple("):rep(300) .. (")"):rep(300)))
    assert.equal(at100, tuples)
  end)
end)

describe("a malformed key", function()
  it("given to call or send says 'not a key' and exits 2, as trust add does", function()
    local dir = C.init(tmpdir() .. "/d")
    local bad = ("ab"):rep(31) .. "a" -- 63 hex digits
    for _, cmd in ipairs { "call", "send" } do
      local code, _, err = C.run(dd(dir, cmd, bad, "echo"))
      assert.equal(2, code)
      assert.matches("not a key: " .. bad, err)
    end
    local typo = ("ab"):rep(31) .. "az" -- 64 characters, one not hex
    local code, _, err = C.run(dd(dir, "call", typo, "echo"))
    assert.equal(2, code)
    assert.matches("not a key: " .. typo, err)
    code, _, err = C.run(dd(dir, "call", "lamp+x=", "echo"))
    assert.equal(2, code)
    assert.matches("not a key: lamp%+x=", err)
    code, _, err = C.run(dd(dir, "trust", "add", bad))
    assert.equal(2, code)
    assert.matches("not a key: " .. bad, err)
    -- a name that could be a label is still an unknown peer (exit 5)
    code, _, err = C.run(dd(dir, "call", "lamp", "echo"))
    assert.equal(5, code)
    assert.matches("no peer with key or label 'lamp'", err)
  end)
end)

describe("--json", function()
  local dir, me, kp
  setup(function()
    local key
    dir, key = C.init(tmpdir() .. "/d")
    kp = N.keys()
    me = N.host(kp)
    me:trust(key)
    me:expose("echo", function(_, args) return args end)
    me:expose("errmap", function() return { error = "x" } end)
    me:expose("refuse", function() return nil, "x" end)
    me:expose("nothing", function() end)
    assert.equal(0, (C.run(dd(dir, "trust", "add", kp:public_hex(), "--label", "spec", "--addr", N.addr(me)))))
  end)
  teardown(function() N.close(me) end)

  it("a reply {error = ...} and an error reply differ in the JSON itself", function()
    local code, out = C.run(dd(dir, "call", "spec", "errmap", "--json"))
    assert.equal(0, code)
    assert.same({ ok = true, value = { error = "x" } }, one_object(out))
    code, out = C.run(dd(dir, "call", "spec", "refuse", "--json"))
    assert.equal(3, code)
    assert.same({ ok = false, error = "x", kind = "remote" }, one_object(out))
  end)

  it("a nil reply is a value null; tuples are {\"$tuple\": [...]}, lists arrays", function()
    local code, out = C.run(dd(dir, "call", "spec", "nothing", "--json"))
    assert.equal(0, code)
    assert.equal('{"ok":true,"value":null}\n', out)
    code, out = C.run(dd(dir, "call", "spec", "echo", "{tuple(1, 2), {1, 2}}", "--json"))
    assert.equal(0, code)
    assert.equal('{"ok":true,"value":[{"$tuple":[1,2]},[1,2]]}\n', out)
  end)

  it("every failure prints one JSON object on stdout: unknown label, bad ARGS, usage, unknown command", function()
    local cases = {
      { 5, dd(dir, "call", "nobody", "echo", "--json") },
      { 2, dd(dir, "call", "spec", "echo", "{1,", "--json") },
      { 2, dd(dir, "call", "spec", "--json") },
      { 2, dd(dir, "--json", "call", "spec", "echo", "--timeout", "0") },
      { 2, dd(dir, "call", "spec", "echo", "--frob", "--json") },
      { 2, { "--json", "frobnicate" } },
      { 2, { "--json" } },
      { 1, { "--data-dir", tmpdir() .. "/none", "id", "--json" } },
    }
    for _, c in ipairs(cases) do
      local code, out, err = C.run(c[2])
      assert.equal(c[1], code, table.concat(c[2], " "))
      local v = one_object(out)
      assert.same({ "error", "kind", "ok" }, (function()
        local keys = {}
        for k in pairs(v) do keys[#keys + 1] = k end
        table.sort(keys)
        return keys
      end)())
      assert.is_false(v.ok)
      assert.equal("local", v.kind)
      assert.equal("peernet-host: " .. v.error .. "\n", err) -- the same message, on stderr too
    end
  end)

  it("a timeout says kind timeout", function()
    me:expose("silent", function(_, _, req) return req end)
    local code, out = C.run(dd(dir, "call", "spec", "silent", "--timeout", "200", "--json"))
    assert.equal(4, code)
    local v = one_object(out)
    assert.same({ false, "timeout" }, { v.ok, v.kind })
  end)

  it("--version --json is JSON", function()
    for _, argv in ipairs { { "--version", "--json" }, { "--json", "--version" }, { "version", "--json" } } do
      local code, out = C.run(argv)
      assert.equal(0, code)
      local v = one_object(out)
      assert.matches("^%d+%.%d+%.%d+$", v.version)
      assert.equal(1, v.protocol)
      assert.is_string(v.libsodium)
      assert.is_string(v.libuv)
    end
  end)

  it("peers and status keep one shape: null rather than missing keys, last_seen an integer", function()
    local other = N.keys()
    assert.equal(0, (C.run(dd(dir, "trust", "add", other:public_hex())))) -- no label, no address
    local code, out = C.run(dd(dir, "peers", "--json"))
    assert.equal(0, code)
    assert.matches('"last_seen":%d+[,}]', out) -- not 1.7e9, not 1764590000.25
    local v = one_object(out)
    assert.is_false(v.running)
    local seen = {}
    for _, p in ipairs(v.peers) do
      for _, k in ipairs(format.SHAPES.peer) do assert.is_not_nil(p[k], k .. " missing") end
      seen[p.key] = p
    end
    local spec = seen[kp:public_hex()]
    assert.equal("spec", spec.label)
    assert.equal(peernet.keys.fingerprint(kp:public()), spec.fingerprint)
    assert.is_true(spec.last_seen > 0)
    local s = one_object(select(2, C.run(dd(dir, "status", "--json"))))
    for _, k in ipairs(format.SHAPES.status) do assert.is_not_nil(s[k], k .. " missing") end
    assert.is_false(s.running)
    assert.equal(json.null, s.pid)
    assert.equal(2, s.trusted)
  end)
end)

describe("the data dir", function()
  it("refuses a control socket path longer than a unix socket holds, and creates nothing", function()
    local base = tmpdir()
    local dir = base .. "/" .. ("d"):rep(120 - #base)
    C.init(dir)
    local sock = dir .. "/control.sock"
    assert.is_true(#sock > 107)
    local code, out, err = C.run(dd(dir, "serve", "--no-discovery", "--listen", "127.0.0.1:0"))
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("the control socket " .. sock:gsub("%p", "%%%0") .. " would be " .. #sock
      .. " bytes, more than the 107 a unix socket path holds: use a shorter %-%-data%-dir", err)
    assert.is_nil(uv.fs_stat(sock:sub(1, 107))) -- nothing at the cut-short path
    assert.is_nil(uv.fs_stat(sock))
    code = C.run(dd(dir, "run", "--listen", "127.0.0.1:0", "/dev/null"))
    assert.equal(1, code)
    assert.is_nil(uv.fs_stat(sock:sub(1, 107)))
    -- commands that only use a running host go on with a short-lived one
    code, out = C.run(dd(dir, "status"))
    assert.equal(0, code)
    assert.matches("host:%s+not running", out)
  end)

  it("a data dir this user cannot read reports the permission error, not 'no identity'", function()
    local dir = C.init(tmpdir() .. "/d")
    local opts
    if uv.getuid() == 0 then
      -- root reads everything: run as nobody, for whom the 0700 dir is closed
      opts = { prefix = { "env", "-u", "LD_PRELOAD", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups" } }
    else
      assert(uv.fs_chmod(dir, 0))
    end
    local code, _, err = C.run(dd(dir, "id"), opts)
    if not opts then uv.fs_chmod(dir, tonumber("700", 8)) end
    assert.equal(1, code)
    assert.equal("peernet-host: cannot read " .. dir .. "/identity.keys: EACCES: permission denied\n", err)
  end)
end)

describe("check", function()
  it("reports two scripts exposing one handle, and host.* calls config.lua does not grant", function()
    local base = tmpdir()
    local dir = C.init(base .. "/d")
    H.write_file(base .. "/a.lua", 'peernet.expose("lights.set", function() return true end)\n')
    H.write_file(base .. "/b.lua", 'peernet.expose("lights.set", function() return 1 end)\n')
    local code, out, err = C.run(dd(dir, "check", base .. "/a.lua", base .. "/b.lua"))
    assert.equal(1, code)
    assert.equal(base .. "/a.lua: ok\n", out)
    assert.matches("b%.lua:1: peernet%.expose: handle 'lights%.set' is already exposed by " .. base:gsub("%p", "%%%0")
      .. "/a%.lua", err)
    local v = one_object(select(2, C.run(dd(dir, "check", base .. "/a.lua", base .. "/b.lua", "--json"))))
    assert.is_false(v.ok)
    assert.same({ "lights.set" }, v.scripts[1].handles)
    assert.is_false(v.scripts[2].ok)
    assert.equal(json.null, v.scripts[1].error)

    H.write_file(base .. "/e.lua", 'peernet.expose("w", function()\n  return host.write("/tmp/x", "1")\nend)\n'
      .. 'peernet.expose("z", function() return host.exec({ "/bin/true" }) end)\n')
    H.write_file(dir .. "/config.lua", 'return { ["e.lua"] = { write = { "/tmp/x" } } }\n', "600")
    code, out, err = C.run(dd(dir, "check", base .. "/e.lua"))
    assert.equal(0, code) -- a warning, not a failure
    assert.equal(base .. "/e.lua: ok\n", out)
    assert.equal(base .. "/e.lua:4: warning: host.exec is not granted to e.lua (" .. dir
      .. "/config.lua has no exec = {...} for it)\n", err)
  end)
end)

describe("help", function()
  local help = require "peernet.cli.help"

  it("every command's --help gives its usage line and every option with its default", function()
    for _, c in ipairs(help.COMMANDS) do
      local argv = {}
      for w in c.name:gmatch("%S+") do argv[#argv + 1] = w end
      argv[#argv + 1] = "--help"
      local code, out = C.run(argv)
      assert.equal(0, code, c.name)
      assert.equal("usage: peernet-host " .. c.usage, out:match("^[^\n]*"):gsub(" %[%-%-json%].*$", ""))
      for _, o in ipairs(c.options or {}) do
        local label = help.option_label(o):gsub("%p", "%%%0")
        assert.matches("\n  " .. label .. " +[^\n]*%(default: " .. help.default_text(o):gsub("%p", "%%%0") .. "%)\n", out)
      end
      for _, o in ipairs(help.GLOBAL) do assert.matches("\n  %-%-" .. o.name:gsub("%p", "%%%0"), out) end
    end
    local _, out = C.run { "call", "--help" }
    assert.matches("%-%-timeout MS +[^\n]*%(default: 5000%)", out)
    _, out = C.run { "serve", "--help" }
    assert.matches("%-%-listen ADDR:PORT +[^\n]*%(default: %[::%]:4040%)", out)
    assert.matches("%-%-no%-discovery +[^\n]*%(default: discovery on%)", out)
    -- trust add has its own text
    local code, tout = C.run { "trust", "add", "--help" }
    assert.equal(0, code)
    assert.matches("^usage: peernet%-host trust add KEY %[%-%-label L%]", tout)
    assert.equal(tout, select(2, C.run { "help", "trust", "add" }))
  end)

  it("an unknown command suggests the nearest one", function()
    local code, _, err = C.run { "stauts" }
    assert.equal(2, code)
    assert.equal("peernet-host: unknown command 'stauts' (did you mean 'status'? peernet-host --help lists them)\n", err)
    _, _, err = C.run { "peer" }
    assert.matches("did you mean 'peers'", err)
    _, _, err = C.run { "xyzzy" }
    assert.equal("peernet-host: unknown command 'xyzzy' (try --help)\n", err)
  end)
end)

describe("waiting on a peer", function()
  it("says what it waits for on a terminal, never on a pipe", function()
    local dir, key = C.init(tmpdir() .. "/d")
    local kp = N.keys()
    local me = N.host(kp)
    me:trust(key)
    me:expose("echo", function(_, args) return args end)
    assert.equal(0, (C.run(dd(dir, "trust", "add", kp:public_hex(), "--label", "lamp", "--addr", N.addr(me)))))
    local code, screen = C.tty(dd(dir, "call", "lamp", "echo", "1"))
    assert.equal(0, code, screen)
    local line = "connecting to lamp (" .. N.addr(me) .. ")…"
    assert.truthy(screen:find(line, 1, true), screen)
    assert.truthy(screen:find(line .. "\r\27[K1\r\n", 1, true), screen) -- wiped before the reply
    local out, err
    code, out, err = C.run(dd(dir, "call", "lamp", "echo", "1"))
    assert.equal(0, code)
    assert.equal("1\n", out)
    assert.equal("", err)
    N.close(me)
  end)
end)

describe("peers", function()
  it("lists a discovered untrusted key with its fingerprint and address", function()
    local dir = C.init(tmpdir() .. "/d")
    -- an announce port of its own: no other host of this machine hears it
    local port = N.free_udp_port()
    H.write_file(dir .. "/host.lua", ("return { announce_port = %d, broadcast = \"127.255.255.255\", "
      .. "announce_v6 = false, mdns = false, netmon = false }\n"):format(port))
    local p = C.spawn(dd(dir, "serve", "--listen", "127.0.0.1:0"))
    C.expect(p, "control socket ")
    local stranger = N.keys()
    local found
    assert.is_true(N.wait(function()
      N.udp_send(port, { peernet.announce.encode(4999, stranger:public()) })
      local _, out = C.run(dd(dir, "peers", "--json"))
      for _, peer in ipairs(decode(out).peers) do
        if peer.key == stranger:public_hex() then found = peer end
      end
      return found ~= nil
    end))
    assert.is_false(found.trusted)
    assert.equal("discovered", found.status)
    assert.equal(peernet.keys.fingerprint(stranger:public()), found.fingerprint)
    assert.matches(":4999$", found.addr)
    local code, out = C.run(dd(dir, "peers"))
    assert.equal(0, code)
    assert.matches("discovered, not trusted %(peernet%-host trust add KEY %-%-label NAME%):\n"
      .. "FINGERPRINT +KEY +ADDR +LAST SEEN\n", out)
    assert.matches(found.fingerprint .. "  " .. found.key .. "  [^\n]*:4999", out)
    C.kill(p, "sigint")
    C.wait(p)
  end)
end)

describe("id --qr", function()
  -- What a terminal shows: each character cell is two modules (upper and
  -- lower half) in the foreground or background colour, as the line's SGR
  -- codes set them, else as the theme has them.
  local function render(text, theme)
    local rows = {}
    for line in text:gmatch("[^\n]+") do
      if line:byte(1) == 27 then
        local fg, bg = theme.fg, theme.bg
        local top, bottom = {}, {}
        local i = 1
        while i <= #line do
          local sgr, after = line:match("^\27%[([%d;]*)m()", i)
          if sgr then
            for n in sgr:gmatch("%d+") do
              n = tonumber(n)
              if n == 0 then fg, bg = theme.fg, theme.bg
              elseif n == 30 then fg = 0
              elseif n == 47 then bg = 255 end
            end
            i = after
          else
            local ch = line:match("^[%z\1-\127\194-\244][\128-\191]*", i)
            local t = (ch == "█" or ch == "▀") and fg or bg
            local b = (ch == "█" or ch == "▄") and fg or bg
            top[#top + 1], bottom[#bottom + 1] = t, b
            i = i + #ch
          end
        end
        rows[#rows + 1] = top
        rows[#rows + 1] = bottom
      end
    end
    return rows
  end

  -- A PGM image of rows, 6 pixels a module, with a margin of the theme's
  -- background (the rest of the terminal).
  local function pgm(path, rows, theme)
    local scale, margin = 6, 8
    local w = #rows[1] + 2 * margin
    local h = #rows + 2 * margin
    local px = {}
    for y = 1, h do
      local line = {}
      for x = 1, w do
        local r = rows[y - margin]
        local v = r and r[x - margin] or theme.bg
        line[x] = string.char(v):rep(scale)
      end
      local l = table.concat(line)
      for _ = 1, scale do px[#px + 1] = l end
    end
    H.write_file(path, ("P5\n%d %d\n255\n"):format(w * scale, h * scale) .. table.concat(px))
  end

  it("scans (zbarimg, Debian's zbar-tools) on a dark and on a light terminal", function()
    assert(os.execute("command -v zbarimg >/dev/null"), "zbarimg missing: scripts/setup installs zbar-tools")
    local base = tmpdir()
    local dir, key = C.init(base .. "/d")
    local code, out = C.run(dd(dir, "id", "--qr"))
    assert.equal(0, code)
    for name, theme in pairs { dark = { fg = 255, bg = 0 }, light = { fg = 0, bg = 255 } } do
      local img = base .. "/" .. name .. ".pgm"
      pgm(img, render(out, theme), theme)
      assert.equal(key, H.sh("env -u LD_PRELOAD zbarimg -q --raw " .. H.q(img) .. " 2>/dev/null"), name .. " theme")
    end
  end)
end)
