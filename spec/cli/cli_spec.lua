-- peernet-host end to end: real child processes, each with its own data dir
-- and port on 127.0.0.1, plus (for handles to call while the script
-- runtime is not in this branch) an in-process host of the spec's own.
local uv = require "luv"
local peernet = require "peernet"
local N = require "support.net"
local C = require "support.cli"

local dd = C.dd

local function decode_json(s)
  local json = require "dkjson"
  local v, _, e = json.decode(s)
  assert(v ~= nil, "not JSON: " .. tostring(s) .. " (" .. tostring(e) .. ")")
  return v
end

-- A data dir path, not created yet: init makes it.
local function tmpdir() return C.tmpdir() .. "/data" end

teardown(C.cleanup)

describe("peernet-host usage", function()
  it("prints help with the exit codes, per-command help, and the version", function()
    local code, out = C.run { "--help" }
    assert.equal(0, code)
    assert.matches("exit codes:", out)
    for _, c in ipairs { "init", "id", "trust", "serve", "run", "call", "send", "peers", "status", "check" } do
      assert.matches("\n  " .. c .. " ", out)
      local ccode, cout = C.run { c, "--help" }
      assert.equal(0, ccode)
      assert.matches("usage: peernet%-host " .. c, cout)
    end
    code, out = C.run { "--version" }
    assert.equal(0, code)
    assert.matches("^peernet%-host %d+%.%d+%.%d+ %(protocol v1", out)
  end)

  it("exits 2 on an unknown command, an unknown option, a missing value and no command", function()
    local code, _, err = C.run { "frobnicate" }
    assert.equal(2, code)
    assert.matches("unknown command 'frobnicate'", err)
    code, _, err = C.run { "id", "--frob" }
    assert.equal(2, code)
    assert.matches("unknown option %-%-frob", err)
    code, _, err = C.run { "call", "x", "y", "--timeout" }
    assert.equal(2, code)
    assert.matches("%-%-timeout needs a value", err)
    code = C.run {}
    assert.equal(2, code)
  end)

  it("exits 1 with a hint when the data dir has no identity", function()
    local code, _, err = C.run(dd(tmpdir(), "id"))
    assert.equal(1, code)
    assert.matches("no identity in .*peernet%-host init", err)
  end)
end)

describe("peernet-host init, id, trust", function()
  it("init makes a 0700 data dir with a 0600 identity; a second init keeps the key", function()
    local dir = tmpdir()
    local code, out = C.run(dd(dir, "init"))
    assert.equal(0, code)
    local key = out:match("created identity (%x+)")
    assert.equal(64, #key)
    assert.equal("700", H.mode_of(dir))
    assert.equal("600", H.mode_of(dir .. "/identity.keys"))
    assert.equal("600", H.mode_of(dir .. "/trust.list"))
    code, out = C.run(dd(dir, "init", "--json"))
    assert.equal(0, code)
    local j = decode_json(out)
    assert.same({ key = key, created = false, data_dir = dir }, j)
    code, out = C.run(dd(dir, "id"))
    assert.equal(key .. "\n", out)
    j = decode_json(select(2, C.run(dd(dir, "id", "--json"))))
    assert.equal(key, j.key)
    assert.equal(key, H.hex(assert(peernet.keys.parse(j.base64))))
  end)

  it("PEERNET_HOME names the data dir when --data-dir is absent", function()
    local dir = tmpdir()
    local code, out = C.run({ "init" }, { env = { PEERNET_HOME = dir } })
    assert.equal(0, code)
    assert.matches("data dir: " .. dir:gsub("%p", "%%%0"), out)
  end)

  it("id --qr draws the key as a QR code with its quiet zone", function()
    local dir, key = C.init(tmpdir())
    local code, out = C.run(dd(dir, "id", "--qr"))
    assert.equal(0, code)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(key, lines[#lines])
    -- 64 bytes at level M: version 5, 37 modules + 2 * 4 quiet = 45 wide,
    -- 23 text lines of two module rows each.
    assert.equal(24, #lines)
    local format = require "peernet.format"
    local function bare(l) return l:sub(#format.QR_ON + 1, -#format.QR_OFF - 1) end
    for i = 1, 23 do assert.equal(45, utf8.len(bare(lines[i]))) end
    -- Quiet zone: the first two lines (4 module rows) are light (the
    -- white background) all along.
    assert.equal((" "):rep(45), bare(lines[1]))
    assert.equal((" "):rep(45), bare(lines[2]))
  end)

  it("trust add / ls / rm, by key or label, with --json, and clear errors", function()
    local dir, key = C.init(tmpdir())
    local other = peernet.keys.generate():public_hex()
    local code, out = C.run(dd(dir, "trust", "add", other, "--label", "lamp", "--addr", "127.0.0.1:4040"))
    assert.equal(0, code)
    assert.matches("trusted " .. other .. "  lamp  127%.0%.0%.1:4040", out)
    code, out = C.run(dd(dir, "trust", "ls"))
    assert.equal(0, code)
    assert.matches("KEY%s+LABEL%s+ADDR%s+ADDED\n" .. other .. "%s+lamp%s+127%.0%.0%.1:4040", out)
    local list = decode_json(select(2, C.run(dd(dir, "trust", "ls", "--json"))))
    assert.equal(1, #list)
    assert.same({ other, "lamp", "127.0.0.1:4040" }, { list[1].key, list[1].label, list[1].addr })
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", list[1].added)
    -- one shape: an entry with no label or address has them as null
    local bare = peernet.keys.generate():public_hex()
    code, out = C.run(dd(dir, "trust", "add", bare, "--json"))
    assert.equal(0, code)
    assert.truthy(out:find('"addr":null', 1, true) and out:find('"label":null', 1, true), out)
    assert.equal(0, (C.run(dd(dir, "trust", "rm", bare))))

    local err
    code, _, err = C.run(dd(dir, "trust", "add", "not-a-key"))
    assert.equal(2, code)
    assert.matches("not a key", err)
    code, _, err = C.run(dd(dir, "trust", "add", key))
    assert.equal(2, code)
    assert.matches("own key", err)
    code, _, err = C.run(dd(dir, "trust", "add", peernet.keys.generate():public_hex(), "--label", "lamp"))
    assert.equal(2, code)
    assert.matches("lamp", err)

    code, out = C.run(dd(dir, "trust", "rm", "lamp", "--json"))
    assert.equal(0, code)
    assert.equal(other, decode_json(out).key)
    code, _, err = C.run(dd(dir, "trust", "rm", "lamp"))
    assert.equal(1, code)
    assert.matches("no peer with key or label 'lamp'", err)
    assert.equal("[]\n", select(2, C.run(dd(dir, "trust", "ls", "--json"))))
    code = C.run(dd(dir, "trust", "frob"))
    assert.equal(2, code)
  end)
end)

describe("two peernet-host processes", function()
  local dirA, keyA, dirB, keyB
  local a, b -- serve processes
  local portA, portB
  -- The spec's own peer, exposing handles to call (handler scripts need
  -- peernet.runtime, not in this branch).
  local kp, me, sent
  local kr = N.keys() -- a raw peer (support/net.lua) that dials serve A

  setup(function()
    dirA, keyA = C.init(tmpdir())
    dirB, keyB = C.init(tmpdir())
    kp = N.keys()
    sent = {}
    me = N.host(kp)
    me:trust(keyA)
    me:trust(keyB)
    me:expose("echo", function(from, args) return { from = from, args = args } end)
    me:expose("refuse", function() return nil, peernet.atom("nope") end)
    me:expose("silent", function(_, _, req) return req end) -- never answers
    me:expose("note", function(from, args) sent[#sent + 1] = { from = from, args = args } end)
    assert.equal(0, (C.run(dd(dirA, "trust", "add", keyB, "--label", "bee"))))
    assert.equal(0, (C.run(dd(dirB, "trust", "add", keyA, "--label", "ay"))))
    assert.equal(0, (C.run(dd(dirA, "trust", "add", kr:public_hex(), "--label", "raw"))))
    for _, d in ipairs { dirA, dirB } do
      assert.equal(0, (C.run(dd(d, "trust", "add", kp:public_hex(), "--label", "spec", "--addr", N.addr(me)))))
    end
  end)

  teardown(function()
    if a then C.kill(a) end
    if b then C.kill(b) end
    N.close(me)
  end)

  it("serve: each listens, prints its key and port, and serves a 0600 control socket", function()
    a = C.spawn(dd(dirA, "serve", "--no-discovery", "--listen", "127.0.0.1:0"))
    b = C.spawn(dd(dirB, "serve", "--no-discovery", "--listen", "127.0.0.1:0"))
    local ka
    ka, portA = C.expect(a, "serving (%x+) on 127%.0%.0%.1:(%d+)\n")
    assert.equal(keyA, ka)
    local kb
    kb, portB = C.expect(b, "serving (%x+) on 127%.0%.0%.1:(%d+)\n")
    assert.equal(keyB, kb)
    C.expect(a, "control socket ")
    assert.equal("600", H.mode_of(dirA .. "/control.sock"))
    -- Both dial the spec's host (its address is in their trust lists).
    assert.is_true(N.wait(function()
      return (me:peer(keyA) or {}).status == "connected" and (me:peer(keyB) or {}).status == "connected"
    end))
  end)

  it("serve --json prints one event object per line", function()
    local dir = C.init(tmpdir())
    local p = C.spawn(dd(dir, "serve", "--no-discovery", "--listen", "127.0.0.1:0", "--json"))
    local line = C.expect(p, "^(.-)\n")
    local ev = decode_json(line)
    assert.equal("serving", ev.event)
    assert.matches("^127%.0%.0%.1:%d+$", ev.listen)
    assert.equal(dir .. "/control.sock", ev.control)
    C.kill(p, "sigint")
    C.wait(p)
    assert.same({ 0, 0 }, { p.code, p.signal })
    assert.same({ event = "stopping", signal = "sigint" }, decode_json(p.out:match("\n(.-)\n$")))
  end)

  it("serve --json says why a link closed: a peer announcing a frame over the cap", function()
    local dir, key = C.init(tmpdir())
    local kr = N.keys()
    assert.equal(0, (C.run(dd(dir, "trust", "add", kr:public_hex()))))
    local p = C.spawn(dd(dir, "serve", "--no-discovery", "--listen", "127.0.0.1:0", "--json"))
    local ev = decode_json(C.expect(p, "^(.-)\n"))
    assert.equal(key, ev.key)
    local raw = N.raw(tonumber(ev.listen:match(":(%d+)$")))
    raw:handshake(kr:secret())
    assert.same({ event = "connected", key = kr:public_hex() },
      decode_json(C.expect(p, '\n({[^\n]*"connected"[^\n]*})\n')))
    raw:write(string.pack(">I4", 1048625))
    assert.is_true(raw:wait_closed())
    raw:close()
    ev = decode_json(C.expect(p, '\n({[^\n]*"disconnected"[^\n]*})\n'))
    assert.equal(kr:public_hex(), ev.key)
    assert.matches("^frame of 1048625 bytes exceeds the cap", ev.reason)
    C.kill(p, "sigint")
    C.wait(p)
    assert.same({ 0, 0 }, { p.code, p.signal })
  end)

  it("a second serve on the same data dir is refused", function()
    local code, _, err = C.run(dd(dirA, "serve", "--no-discovery", "--listen", "127.0.0.1:0"))
    assert.equal(1, code)
    assert.matches("already running", err)
  end)

  it("trust each other through the trust list, followed live by the running hosts", function()
    assert.equal(0, (C.run(dd(dirA, "trust", "add", keyB, "--addr", "127.0.0.1:" .. portB))))
    assert.equal(0, (C.run(dd(dirB, "trust", "add", keyA, "--addr", "127.0.0.1:" .. portA))))
    C.expect(a, "connected " .. keyB)
    C.expect(b, "connected " .. keyA)
  end)

  it("peers and status go through the running host's control socket", function()
    local code, out = C.run(dd(dirA, "peers"))
    assert.equal(0, code)
    assert.matches(keyB .. "%s+bee%s+connected%s+127%.0%.0%.1:" .. portB, out)
    assert.matches(kp:public_hex() .. "%s+spec%s+connected", out)
    local j = decode_json(select(2, C.run(dd(dirA, "peers", "--json"))))
    assert.is_true(j.running)
    local byLabel = {}
    for _, p in ipairs(j.peers) do byLabel[p.label] = p end
    assert.equal("connected", byLabel.bee.status)
    assert.equal(keyB, byLabel.bee.key)
    assert.is_true(byLabel.bee.last_seen > 0)

    code, out = C.run(dd(dirB, "status"))
    assert.equal(0, code)
    assert.matches("host:%s+running %(pid " .. b.pid .. ", serve", out)
    local s = decode_json(select(2, C.run(dd(dirB, "status", "--json"))))
    assert.is_true(s.running)
    assert.equal(keyB, s.key)
    assert.equal(2, s.connected)
    assert.equal("127.0.0.1:" .. portB, s.listen)
  end)

  it("call from one process to the other: {error, Reason} exits 3 with the reason", function()
    -- No handler scripts without the runtime: B answers no_such_handle.
    local code, out, err = C.run(dd(dirA, "call", "bee", "lights.on", "{room = 'kitchen'}"))
    assert.equal(3, code, err)
    assert.equal("", out)
    assert.matches('error: atom"no_such_handle"', err)
    code, out = C.run(dd(dirA, "call", keyB, "lights.on", "--json"))
    assert.equal(3, code)
    assert.same({ ok = false, error = "no_such_handle", kind = "remote" }, decode_json(out))
  end)

  it("call through the control socket prints the reply, pretty or as JSON", function()
    local code, out, err = C.run(dd(dirA, "call", "spec", "echo",
      '{n = 1, f = 1.5, s = "hi", bin = "\\0\\255", list = {1, 2}, t = tuple(atom"ok", null), m = map{}}'))
    assert.equal(0, code, err)
    local want = '{args = {bin = "\\x00\\xff", f = 1.5, list = {1, 2}, m = map{}, n = 1, s = "hi", '
      .. 't = tuple("ok", null)}, from = "' .. keyA .. '"}\n' -- the spec's host decodes atoms as text
    assert.equal(want, out)
    code, out = C.run(dd(dirA, "call", "spec", "echo", '{s = "hi", t = tuple(atom"ok", 2)}', "--json"))
    assert.equal(0, code)
    assert.same({ ok = true, value = { from = keyA, args = { s = "hi", t = { ["$tuple"] = { "ok", 2 } } } } },
      decode_json(out))
  end)

  it("what call prints reads back as ARGS: values survive the round trip", function()
    local literal = '{big = bigint"18446744073709551615", neg = -7, t = tuple(atom"a", {}, map{[1] = 2})}'
    local code, out = C.run(dd(dirA, "call", "spec", "echo", literal))
    assert.equal(0, code)
    local args = out:match("^{args = (.*), from = ")
    local code2, out2 = C.run(dd(dirB, "call", "spec", "echo", args))
    assert.equal(0, code2)
    assert.equal(args, out2:match("^{args = (.*), from = "))
  end)

  it("call exit codes: remote error 3, timeout 4, unknown peer 5, bad ARGS 2", function()
    local code, out, err = C.run(dd(dirB, "call", "spec", "refuse"))
    assert.equal(3, code)
    assert.matches('error: atom"nope"', err)
    code, out, err = C.run(dd(dirB, "call", "spec", "silent", "--timeout", "200", "--json"))
    assert.equal(4, code)
    assert.equal("timeout", decode_json(out).kind)
    code, _, err = C.run(dd(dirB, "call", "nobody", "echo"))
    assert.equal(5, code)
    assert.matches("no peer with key or label 'nobody'", err)
    code, _, err = C.run(dd(dirB, "call", peernet.keys.generate():public_hex(), "echo"))
    assert.equal(5, code)
    assert.matches("not in the trust list", err)
    code, _, err = C.run(dd(dirB, "call", "spec", "echo", "{1,"))
    assert.equal(2, code)
    assert.matches("ARGS", err)
    code, _, err = C.run(dd(dirB, "call", "spec", "echo", "('x'):rep(1e9)"))
    assert.equal(2, code)
    code = C.run(dd(dirB, "call", "spec", "echo", "--timeout", "0"))
    assert.equal(2, code)
  end)

  it("call: a reply holding a pid fails that call (exit 1, or 3 for an error reply), never the link", function()
    local raw = N.raw(tonumber(portA))
    raw:handshake(kr:secret())
    local pid = H.unhex("5864000d6e6f6e6f6465406e6f686f7374000000600000000000000000")
    local function answer_with(ok, term)
      local p = C.spawn(dd(dirA, "call", "raw", "give", "1"))
      local c = raw:recv_env()
      assert.equal("give", c.name)
      local id = peernet.etf.encode(peernet.etf.bigint(c.id_str)):sub(2)
      raw:send_env("\131h\3w\5reply" .. id .. "h\2" .. (ok and "w\2ok" or "w\5error") .. term)
      return C.wait(p)
    end
    local p = answer_with(true, pid)
    assert.equal(1, p.code)
    assert.matches("undecodable reply: etf: pid %(tag 88%)", p.err)
    p = answer_with(false, "h\2w\7timeoutl\0\0\0\1" .. pid .. "j")
    assert.equal(3, p.code)
    assert.matches("error: %(undecodable reason: etf: pid %(tag 88%)", p.err)
    p = answer_with(true, "n\9\0" .. ("\0"):rep(8) .. "\64")
    assert.equal(0, p.code, p.err)
    assert.equal("bigint\"1180591620717411303424\"\n", p.out)
    assert.is_false(raw.eof)
    raw:close()
  end)

  it("send through the control socket arrives at the peer", function()
    local code, _, err = C.run(dd(dirB, "send", "spec", "note", "{x = 1}"))
    assert.equal(0, code, err)
    assert.is_true(N.wait(function() return #sent == 1 end))
    assert.same({ from = keyB, args = { x = 1 } }, sent[1])
  end)

  it("the control socket shrugs off a bad client", function()
    local pipe = uv.new_pipe(false)
    local closed
    pipe:connect(dirA .. "/control.sock", function(e)
      assert.is_nil(e)
      pipe:write(string.pack(">I4", 0xffffffff))
      pipe:read_start(function(_, d) if not d then closed = true end end)
    end)
    assert.is_true(N.wait(function() return closed end))
    pipe:close()
    local p2 = uv.new_pipe(false)
    local closed2
    p2:connect(dirA .. "/control.sock", function()
      p2:write(string.pack(">s4", "\131garbage"))
      p2:read_start(function(_, d) if not d then closed2 = true end end)
    end)
    assert.is_true(N.wait(function() return closed2 end))
    p2:close()
    -- The host still answers.
    local code = C.run(dd(dirA, "call", "spec", "echo", "1"))
    assert.equal(0, code)
  end)

  it("SIGTERM stops serve with exit 0 and removes the control socket", function()
    C.kill(a, "sigterm")
    C.wait(a)
    assert.same({ 0, 0 }, { a.code, a.signal })
    assert.matches("stopping %(sigterm%)", a.out)
    assert.is_nil(uv.fs_stat(dirA .. "/control.sock"))
    C.expect(b, "disconnected " .. keyA .. " %(peer closed the connection%)\n")
  end)

  it("without a running host, call and send start a short-lived one", function()
    local code, out, err = C.run(dd(dirA, "call", "spec", "echo", "{1, 2}"))
    assert.equal(0, code, err)
    assert.equal('{args = {1, 2}, from = "' .. keyA .. '"}\n', out)
    -- to the other process, by label, with the address from the trust list
    code, _, err = C.run(dd(dirA, "call", "bee", "x"))
    assert.equal(3, code)
    assert.matches("no_such_handle", err)
    code, _, err = C.run(dd(dirA, "send", "spec", "note", "'short'"))
    assert.equal(0, code, err)
    assert.is_true(N.wait(function() return #sent == 2 end))
    assert.same({ from = keyA, args = "short" }, sent[2])
  end)

  it("without a running host, peers probes the trusted peers that have an address", function()
    local code, out = C.run(dd(dirA, "peers", "--json"))
    assert.equal(0, code)
    local j = decode_json(out)
    assert.is_false(j.running)
    local status = {}
    for _, p in ipairs(j.peers) do status[p.label] = p.status end
    assert.equal("connected", status.spec)
    assert.equal("connected", status.bee)
    local s = decode_json(select(2, C.run(dd(dirA, "status", "--json"))))
    assert.same({ running = false, key = keyA, data_dir = dirA, trusted = 3 }, s) -- spec, bee, raw
  end)

  it("a stale control socket is replaced; an unreachable peer exits 5", function()
    -- a socket file nobody listens on, as a killed host leaves it
    a = C.spawn(dd(dirA, "serve", "--no-discovery", "--listen", "127.0.0.1:0"))
    C.expect(a, "control socket ")
    C.kill(a, "sigkill")
    C.wait(a)
    assert.is_table(uv.fs_stat(dirA .. "/control.sock"))
    local code, _, err = C.run(dd(dirA, "call", keyA, "x", "--addr", "127.0.0.1:1"))
    assert.equal(5, code)
    assert.matches("not in the trust list", err) -- A does not trust itself
    C.kill(b, "sigterm")
    C.wait(b)
    assert.same({ 0, 0 }, { b.code, b.signal })
    code, _, err = C.run(dd(dirA, "call", "bee", "x", "--timeout", "3000"))
    assert.equal(5, code)
    assert.matches("cannot connect", err)
    a = C.spawn(dd(dirA, "serve", "--no-discovery", "--listen", "127.0.0.1:0"))
    C.expect(a, "control socket ")
    assert.equal("600", H.mode_of(dirA .. "/control.sock"))
    C.kill(a, "sigterm")
    C.wait(a)
    assert.same({ 0, 0 }, { a.code, a.signal })
  end)
end)

describe("peernet-host run and check", function()
  local dir
  setup(function() dir = C.init(tmpdir()) end)

  if not peernet.runtime then
    pending("needs peernet.runtime: run exits 0 when the script is done, serves while it exposes handles")
    pending("needs peernet.runtime: run prints file:line and a traceback and exits 1 on a script error")
    pending("needs peernet.runtime: check reports file:line and exits 1 for a broken script")
    pending("needs peernet.runtime: serve --handlers loads the scripts and they answer calls")

    it("say clearly that they need the script runtime", function()
      H.write_file(dir .. "/s.lua", "print(1)")
      local code, _, err = C.run(dd(dir, "run", dir .. "/s.lua"))
      assert.equal(1, code)
      assert.matches("needs the script runtime", err)
      code, _, err = C.run(dd(dir, "check", dir .. "/s.lua"))
      assert.equal(1, code)
      assert.matches("needs the script runtime", err)
      code = C.run(dd(dir, "run"))
      assert.equal(2, code)
      code, _, err = C.run(dd(dir, "serve", "--no-discovery", "--listen", "127.0.0.1:0", "--handlers", dir))
      assert.equal(1, code)
      assert.matches("needs the script runtime", err)
    end)
    return
  end

  it("run exits 0 when the script is done, with arg as in lua", function()
    H.write_file(dir .. "/s.lua", 'print("args", arg[0]:match("[^/]*$"), ...)\nprint("self", peernet.self())')
    local code, out, err = C.run(dd(dir, "run", dir .. "/s.lua", "one", "--two"))
    assert.equal(0, code, err)
    assert.matches("args\ts%.lua\tone\t%-%-two", out)
    assert.matches("self\t%x+", out)
  end)

  it("user programs see no wire codec test hooks: not in run scripts, not in peernet.so", function()
    H.write_file(dir .. "/wire.lua", 'local m = require("peernet")\n'
      .. 'for _, k in ipairs { "noise", "handshake", "envelope", "announce", "mdns" } do print(k, m[k]) end\n'
      .. 'print("args", type(m.args), type(peernet.atom))')
    local code, out, err = C.run(dd(dir, "run", dir .. "/wire.lua"))
    assert.equal(0, code, err)
    for _, k in ipairs { "noise", "handshake", "envelope", "announce", "mdns" } do
      assert.truthy(out:find(k .. "\tnil\n", 1, true), out)
    end
    assert.truthy(out:find("args\ttable\tfunction", 1, true), out)
    local lua = H.sh("command -v lua5.4")
    assert.equal("nil nil", H.sh(H.q(lua) .. " -e " .. H.q("package.cpath = " .. ("%q"):format(H.build_dir
      .. "/?.so;" .. package.cpath) .. " local m = require 'peernet' io.write(tostring(m.noise), ' ', "
      .. "tostring(m.envelope))")))
  end)

  it("run closes the hosts and runtimes a script leaves open before it exits", function()
    H.write_file(dir .. "/leave.lua", 'local m = require("peernet")\n'
      .. 'local h = assert(m.host.new { secret = m.keys.generate():secret(), listen = "127.0.0.1:0", weak = true })\n'
      .. 'assert(m.runtime.new(h))\n'
      .. 'print("port", h:port())')
    local code, out, err = C.run(dd(dir, "run", dir .. "/leave.lua"))
    assert.equal(0, code, err)
    assert.matches("port\t%d+", out)
    assert.equal("", err)
  end)

  it("run gives the script one peernet: the global is require 'peernet', with the module's parts", function()
    H.write_file(dir .. "/same.lua", 'print("same", require("peernet") == peernet, type(peernet.host), type(peernet.call))')
    local code, out, err = C.run(dd(dir, "run", dir .. "/same.lua"))
    assert.equal(0, code, err)
    assert.matches("same\ttrue\ttable\tfunction", out)
  end)

  it("run prints file:line and a traceback and exits 1 on a script error", function()
    H.write_file(dir .. "/bad.lua", "local x = 1\nerror('boom')\n")
    local code, _, err = C.run(dd(dir, "run", dir .. "/bad.lua"))
    assert.equal(1, code)
    assert.matches("bad%.lua:2: boom", err)
    assert.matches("traceback", err)
  end)

  it("first calls and sends reach a peer that reads what came with M3 only later (the reference)", function()
    local kr = N.keys()
    local peer = N.m3_buffering_peer(kr:secret())
    local d = C.init(tmpdir())
    assert.equal(0, (C.run(dd(d, "trust", "add", kr:public_hex(), "--label", "ref", "--addr",
      "127.0.0.1:" .. peer.port))))
    for i = 1, 3 do -- short-lived hosts
      local code, out, err = C.run(dd(d, "call", "ref", "echo", tostring(i), "--timeout", "3000"))
      assert.equal(0, code, err)
      assert.equal(i .. "\n", out)
      code, _, err = C.run(dd(d, "send", "ref", "note", tostring(i)))
      assert.equal(0, code, err)
    end
    H.write_file(d .. "/first.lua", table.concat({
      'assert(peernet.connect("ref"))',
      'print(peernet.call("ref", "echo", "first", { timeout = 3000 }))',
    }, "\n"))
    H.write_file(d .. "/send.lua", 'assert(peernet.connect("ref"))\nassert(peernet.send("ref", "note", "only"))')
    local code, out, err = C.run(dd(d, "run", d .. "/first.lua"))
    assert.equal(0, code, err)
    assert.equal("first\n", out)
    code, _, err = C.run(dd(d, "run", d .. "/send.lua"))
    assert.equal(0, code, err)
    assert(N.wait(function() return peer.closed == 8 end))
    assert.same({ 1, 2, 3, "only" }, peer.sends)
    assert.equal(0, peer.stuck)
    peer.close()
  end)

  it("call tries again, within --timeout, a handshake the host cut short (a host under a flood)", function()
    local kb = N.keys()
    local d = C.init(tmpdir())
    local _, id = C.run(dd(d, "id"))
    local b = N.host(kb, { trust = { (id:match("%x+")) } })
    b:expose("echo", function(_, v) return v end)
    -- In front of b: the first two connections are closed once their
    -- message 1 is in, as a host does to a waiter drawn to make room; the
    -- rest are relayed to b.
    local front, cut = uv.new_tcp(), 0
    assert(front:bind("127.0.0.1", 0))
    front:listen(16, function()
      local c = uv.new_tcp()
      front:accept(c)
      if cut < 2 then
        c:read_start(function() cut = cut + 1; c:close() end)
        return
      end
      local up = uv.new_tcp()
      up:connect("127.0.0.1", b:port(), function(err)
        assert(not err, err)
        local function pipe(from, to)
          from:read_start(function(_, data)
            if data then return to:write(data) end
            if not from:is_closing() then from:close() end
            if not to:is_closing() then to:close() end
          end)
        end
        pipe(c, up)
        pipe(up, c)
      end)
    end)
    assert.equal(0, (C.run(dd(d, "trust", "add", kb:public_hex(), "--label", "busy", "--addr",
      "127.0.0.1:" .. front:getsockname().port))))
    local code, out, err = C.run(dd(d, "call", "busy", "echo", "'through'", "--timeout", "5000"))
    assert.equal(0, code, err)
    assert.equal('"through"\n', out)
    assert.equal(2, cut)
    front:close()
    N.close(b)
  end)

  it("run prints why a link closed on stderr, and scripts get the reason", function()
    local kx = N.keys()
    local x = N.host(kx, { trust = { (select(2, C.run(dd(dir, "id")))):match("%x+") } })
    assert.equal(0, (C.run(dd(dir, "trust", "add", kx:public_hex(), "--label", "x", "--addr", N.addr(x)))))
    H.write_file(dir .. "/down.lua", table.concat({
      'assert(peernet.connect("x"))',
      'peernet.on("disconnected", function(key, why) print("down", key, why) end)',
      'print("up")',
      'peernet.sleep(10000)',
    }, "\n"))
    local p = C.spawn(dd(dir, "run", dir .. "/down.lua"))
    C.expect(p, "up\n")
    N.close(x) -- the peer goes away
    -- A close with bytes still unread here (a settle pong in flight) is a
    -- reset: either is the peer leaving, and the reason must say which.
    local why = C.expect(p, "down\t" .. kx:public_hex() .. "\t([^\n]+)\n")
    assert.is_truthy(({ ["peer closed the connection"] = true, ["connection reset by peer"] = true })[why], why)
    assert(N.wait(function() return p.err:match("disconnected") end))
    assert.matches("peernet %[info%] disconnected " .. kx:public_hex() .. " %(" .. why .. "%)\n", p.err)
    C.kill(p, "sigterm")
    C.wait(p)
  end)

  it("run keeps serving while it exposes a handle, until SIGTERM, then exits 0", function()
    H.write_file(dir .. "/serve.lua", 'peernet.expose("hi", function() return "hello" end)\nprint("exposed")')
    local p = C.spawn(dd(dir, "run", dir .. "/serve.lua"))
    C.expect(p, "exposed\n")
    C.kill(p, "sigterm")
    C.wait(p)
    assert.same({ 0, 0 }, { p.code, p.signal })
  end)

  it("check reports file:line and exits 1 for a broken script, 0 when all load", function()
    H.write_file(dir .. "/ok.lua", 'peernet.expose("a", function() return 1 end)')
    H.write_file(dir .. "/broken.lua", "local x = \n")
    local code, out = C.run(dd(dir, "check", dir .. "/ok.lua"))
    assert.equal(0, code)
    assert.matches("ok%.lua: ok", out)
    local err
    code, _, err = C.run(dd(dir, "check", dir .. "/ok.lua", dir .. "/broken.lua"))
    assert.equal(1, code)
    assert.matches("broken%.lua:%d+:", err)
  end)

  it("serve --handlers loads the scripts and they answer calls", function()
    local hd = dir .. "/h"
    os.execute("mkdir -p " .. H.q(hd))
    H.write_file(hd .. "/lamp.lua", 'peernet.expose("lamp.on", function(from, args) return {on = true} end)')
    local p = C.spawn(dd(dir, "serve", "--no-discovery", "--listen", "127.0.0.1:0", "--handlers", hd))
    C.expect(p, "loaded .*lamp%.lua: lamp%.on")
    C.expect(p, "serving ")
    C.kill(p, "sigterm")
    C.wait(p)
    assert.same({ 0, 0 }, { p.code, p.signal })
  end)
end)
