-- peernet-host's commands (DESIGN.md "CLI"; the reference is docs/cli.md).
-- src/main.c runs M.main(arg) in a state with the full standard library,
-- luv on the executable's loop and the peernet module, then M.close_hosts()
-- and M.close_handles() so that nothing is pending at lua_close.
--
-- Failures are values here: a command returns an exit code, and the only
-- place that prints an error and picks the code is fail(). Nothing calls
-- os.exit: main.c must get the chance to close the loop cleanly.
local uv = require "luv"
local peernet = require "peernet"
local args_literal = require "peernet.args"
local format = require "peernet.format"
local control = require "peernet.control"

local M = {}

-- Exit codes (also in `peernet-host --help` and docs/cli.md).
local EXIT = {
  ok = 0,
  failure = 1,      -- bad data dir, missing identity, I/O, a script that fails
  usage = 2,        -- unknown command or option, bad ARGS, bad key
  remote = 3,       -- the peer answered {error, Reason}
  timeout = 4,      -- no answer (or no connection) within --timeout
  unreachable = 5,  -- peer unknown, untrusted, not reachable, or the link closed
}
M.EXIT = EXIT

local DEFAULT_TIMEOUT_MS = 5000
local PEERS_PROBE_MS = 3000
local DRAIN_MS = 5000

-- ---- hosts and handles made in this process (closed at exit) ---------------

local hosts = setmetatable({}, { __mode = "k" })
local runtimes = setmetatable({}, { __mode = "k" })

local function track_new(module, registry)
  local new = module.new
  module.new = function(...)
    local obj, err, code = new(...)
    if obj then registry[obj] = true end
    return obj, err, code
  end
end
track_new(peernet.host, hosts)
if peernet.runtime then track_new(peernet.runtime, runtimes) end

function M.close_hosts()
  for rt in pairs(runtimes) do pcall(rt.close, rt) end
  for h in pairs(hosts) do pcall(h.close, h) end
end

-- Only once no host handle is open (luv's walk must see luv handles only).
function M.close_handles()
  uv.walk(function(h)
    if not h:is_closing() then h:close() end
  end)
end

-- ---- output ------------------------------------------------------------------

-- The first failed write to stdout (a reader that hung up: EPIPE, as
-- SIGPIPE is ignored). main() turns it into exit 1 with a message; serve
-- keeps serving when its log reader goes away.
local stdout_error

-- Each line is flushed by hand: stdout is fully buffered because a line
-- buffered stream hides a failed flush from Lua (fwrite still says yes).
local function out(...)
  local ok, e = io.stdout:write(...)
  if ok then ok, e = io.stdout:write("\n") end
  if ok then ok, e = io.stdout:flush() end
  if not ok and not stdout_error then stdout_error = tostring(e) end
end
local function err(...) io.stderr:write("peernet-host: ", ...) io.stderr:write("\n") end

local function fail(code, msg)
  err(msg)
  return EXIT[code] or code
end

-- ---- the data dir ---------------------------------------------------------------

local function default_data_dir()
  local home = os.getenv("PEERNET_HOME")
  if home and home ~= "" then return home end
  local xdg = os.getenv("XDG_DATA_HOME")
  if xdg and xdg ~= "" then return xdg .. "/peernet" end
  local h = os.getenv("HOME")
  if not h or h == "" then return nil, "neither PEERNET_HOME, XDG_DATA_HOME nor HOME is set: use --data-dir" end
  return h .. "/.local/share/peernet"
end

local function paths(dir)
  return {
    dir = dir,
    identity = dir .. "/identity.keys",
    trust = dir .. "/trust.list",
    handlers = dir .. "/handlers",
    config = dir .. "/config.lua",
    control = control.path(dir),
  }
end

-- mkdir -p, each created directory 0700 (XDG: user data is private).
local function mkdirs(dir)
  local path = dir:sub(1, 1) == "/" and "" or "."
  for part in dir:gmatch("[^/]+") do
    path = path .. "/" .. part
    local st = uv.fs_stat(path)
    if not st then
      local ok, e = uv.fs_mkdir(path, tonumber("700", 8))
      if not ok and not tostring(e):match("^EEXIST") then return nil, e end
    elseif st.type ~= "directory" then
      return nil, path .. " is not a directory"
    end
  end
  return true
end

local function load_identity(p)
  if not uv.fs_stat(p.identity) then
    return nil, "no identity in " .. p.dir .. " (run `peernet-host init` first, or use --data-dir)"
  end
  local kp, e = peernet.keys.load(p.identity)
  if not kp then return nil, p.identity .. ": " .. tostring(e) end
  return kp
end

-- lock: for a read-modify-write (trust add/rm, init): the store holds the
-- trust list's writer lock until store:close(), so concurrent writers take
-- turns instead of losing each other's entries. PEERNET_LOCK_WAIT_MS bounds
-- the wait for another writer (default 10000).
local function open_trust(p, lock)
  local opts
  if lock then
    opts = { lock = true, wait_ms = math.tointeger(tonumber(os.getenv("PEERNET_LOCK_WAIT_MS") or "")) }
    if opts.wait_ms and (opts.wait_ms < 0 or opts.wait_ms > 3600000) then opts.wait_ms = nil end
  end
  local store, e = peernet.trust.open(p.trust, opts)
  if not store then return nil, tostring(e) end
  return store
end

-- PEER (key in any text form, or a label) -> trust entry | nil, msg.
local function resolve_peer(p, peer)
  local store, e = open_trust(p)
  if not store then return nil, e end
  local entry = store:get(peer)
  if entry then return entry end
  if peernet.keys.parse(peer) then
    return nil, "peer " .. peer .. " is not in the trust list (peernet-host trust add KEY --addr HOST:PORT)"
  end
  return nil, "no peer with key or label '" .. peer .. "' in the trust list"
end

-- ---- command-line parsing --------------------------------------------------------

-- spec.opts: name -> "value" | "flag". Options may come anywhere (before
-- `--`), as --name value or --name=value; --data-dir, --json and --help are
-- known to every command. spec.stop: options end at the first positional
-- (run: the script's own arguments are left alone).
local function parse(argv, first, spec)
  local o = { pos = {} }
  local known = { ["data-dir"] = "value", json = "flag", help = "flag" }
  for k, v in pairs(spec.opts or {}) do known[k] = v end
  local i = first
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do o.pos[#o.pos + 1] = argv[j] end
      break
    elseif (a == "-h" or a:match("^%-%-%a")) and not (spec.stop and #o.pos > 0) then
      local name, value = a:match("^%-%-([%w-]+)=(.*)$")
      name = name or (a == "-h" and "help" or a:sub(3))
      local kind = known[name]
      if not kind then return nil, "unknown option --" .. name end
      if kind == "value" then
        if not value then
          i = i + 1
          value = argv[i]
          if not value then return nil, "--" .. name .. " needs a value" end
        end
        o[name] = value
      else
        if value then return nil, "--" .. name .. " takes no value" end
        o[name] = true
      end
    else
      o.pos[#o.pos + 1] = a
    end
    i = i + 1
  end
  return o
end

local function ms_option(o, name, default)
  if o[name] == nil then return default end
  local n = tonumber(o[name])
  if not n or n ~= math.floor(n) or n < 1 or n > 86400000 then
    return nil, "--" .. name .. " must be a whole number of milliseconds (1..86400000)"
  end
  return math.tointeger(n)
end

-- ---- waiting on the loop ------------------------------------------------------------

-- Runs fn as a coroutine driven by the loop; returns xpcall-style results.
local function run_task(fn, ...)
  local result
  local co = coroutine.create(function(...)
    result = table.pack(xpcall(fn, debug.traceback, ...))
  end)
  local ok, e = coroutine.resume(co, ...)
  if not ok then return false, e end
  while not result do
    if not uv.run("once") and not result then
      return false, "internal: the loop has nothing left to do but the command is not done"
    end
  end
  return table.unpack(result, 1, result.n)
end

-- Inside a task: start(k) begins something whose callback is k; returns
-- what k was called with.
local function await(start)
  local co = assert(coroutine.running())
  local res, yielded
  start(function(...)
    if res then return end
    res = table.pack(...)
    if yielded then
      local ok, e = coroutine.resume(co)
      if not ok then err("internal: ", tostring(e)) end
    end
  end)
  if not res then
    yielded = true
    coroutine.yield()
  end
  return table.unpack(res, 1, res.n)
end

-- ---- operations on a host (one code path for the control socket and a ----
-- ---- short-lived host) ---------------------------------------------------------

local ops = {}

-- A handshake the other side cut short is tried again until the deadline:
-- a host under a flood of first messages closes a waiting one drawn at
-- random (docs/host.md, "Strangers"), and the next try has the same chance.
-- A refused connection or a wrong key fails at once.
local RETRY_FIRST_MS, RETRY_MAX_MS = 20, 160
local function cut_short(err)
  local e = tostring(err)
  return e:find("peer closed the connection", 1, true) or e:find("connection reset", 1, true)
end

-- cb(true) once key is connected, else cb(false, kind, message).
function ops.connect(h, key, addr, timeout_ms, cb)
  local p = h:peer(key)
  if p and p.status == "connected" then return cb(true) end
  local done
  local timer
  local function finish(...)
    if done then return end
    done = true
    if timer and not timer:is_closing() then timer:close() end
    cb(...)
  end
  timer = uv.new_timer()
  timer:start(timeout_ms, 0, function()
    finish(false, "timeout", ("no connection to %s within %d ms"):format(key, timeout_ms))
  end)
  local pause = RETRY_FIRST_MS
  local function try()
    local ok, e = h:connect(key, addr, function(cok, cerr)
      if cok then return finish(true) end
      if done then return end
      if not cut_short(cerr) then return finish(false, "unreachable", "cannot connect: " .. tostring(cerr)) end
      local again = uv.new_timer()
      again:start(pause, 0, function()
        again:close()
        if not done then try() end
      end)
      pause = math.min(pause * 2, RETRY_MAX_MS)
    end)
    if not ok then finish(false, "unreachable", "cannot connect: " .. tostring(e)) end
  end
  try()
end

local function check_call_request(req)
  if type(req.peer) ~= "string" or type(req.handle) ~= "string" or req.handle == ""
    or type(req.args) ~= "string" or req.args:byte(1) ~= 131 then
    return nil, "a call needs peer, handle and args (ETF bytes)"
  end
  if req.addr ~= nil and type(req.addr) ~= "string" then return nil, "addr must be text" end
  local t = req.timeout
  if math.type(t) ~= "integer" or t < 1 or t > 86400000 then return nil, "timeout must be 1..86400000 ms" end
  if not peernet.keys.parse(req.peer) then return nil, "peer must be a key" end
  return true
end

-- The answers are the control protocol's (lua/peernet/control.lua).
function ops.call(h, req, reply)
  local okr, why = check_call_request(req)
  if not okr then return reply { ok = false, kind = "bad_request", message = why } end
  local start = uv.now()
  ops.connect(h, req.peer, req.addr, req.timeout, function(ok, kind, msg)
    if not ok then return reply { ok = false, kind = kind, message = msg } end
    local left = math.max(1, req.timeout - (uv.now() - start))
    local sent, e = h:call(req.peer, req.handle, req.args:sub(2), function(cok, v, ckind)
      if cok then return reply { ok = true, value = "\131" .. v } end
      if ckind == "remote" then return reply { ok = false, kind = "remote", reason = "\131" .. v } end
      if ckind == "timeout" then
        return reply { ok = false, kind = "timeout", message = ("no reply within %d ms"):format(req.timeout) }
      end
      reply { ok = false, kind = "unreachable", message = "the connection closed before the reply" }
    end, { timeout = math.tointeger(left), raw = true })
    if not sent then reply { ok = false, kind = "unreachable", message = tostring(e) } end
  end)
end

-- opts.flush: wait until the message has been written to the socket (a
-- short-lived host closes right after; a running one need not wait).
function ops.send(h, req, reply, opts)
  local okr, why = check_call_request(req)
  if not okr then return reply { ok = false, kind = "bad_request", message = why } end
  ops.connect(h, req.peer, req.addr, req.timeout, function(ok, kind, msg)
    if not ok then return reply { ok = false, kind = kind, message = msg } end
    local before = h:stats().writes
    local sent, e = h:send(req.peer, req.handle, req.args:sub(2), { raw = true })
    if not sent then return reply { ok = false, kind = "unreachable", message = tostring(e) } end
    if not (opts and opts.flush) then return reply { ok = true } end
    -- The host counts socket writes when it issues them; a few ms of
    -- polling against a deadline is enough for a process about to exit.
    -- On a link this host just dialled the message may still sit unread in
    -- the peer's buffer (the Elixir reference's M3 read) until the link
    -- has settled (docs/host.md): closing before that would lose it.
    local t = uv.new_timer()
    local deadline = uv.now() + req.timeout
    t:start(5, 5, function()
      local written = h:stats().writes > before and not (h:peer(req.peer) or {}).settling
      if written or uv.now() >= deadline then
        t:close()
        reply { ok = true }
      end
    end)
  end)
end

local function peer_list(h, p)
  local labels = {}
  local store = open_trust(p)
  if store then
    for _, e in ipairs(store:list()) do labels[e.key] = e.label end
  end
  local list = {}
  for _, peer in ipairs(h:peers()) do
    list[#list + 1] = {
      key = peer.key, label = labels[peer.key], status = peer.status, trusted = peer.trusted,
      addr = peer.addr ~= "" and peer.addr or nil, last_seen = peer.last_seen,
      connections = peer.connections,
    }
  end
  table.sort(list, function(a, b) return (a.label or a.key) < (b.label or b.key) end)
  return list
end

-- ---- commands --------------------------------------------------------------------------

local commands = {}

local function json_or(o, value, text)
  if o.json then out(format.json(value)) else out(text) end
end

commands.init = {
  summary = "create the data dir and this host's identity (keeps an existing one)",
  usage = "init [--json]",
  run = function(o, p)
    if #o.pos > 0 then return fail("usage", "init takes no arguments") end
    local ok, e = mkdirs(p.dir)
    if not ok then return fail("failure", "cannot create " .. p.dir .. ": " .. tostring(e)) end
    uv.fs_chmod(p.dir, tonumber("700", 8))
    local created = false
    local kp
    if uv.fs_stat(p.identity) then
      kp, e = load_identity(p)
      if not kp then return fail("failure", e) end
    else
      kp = peernet.keys.generate()
      local saved, se = kp:save(p.identity)
      if not saved then return fail("failure", "cannot save " .. p.identity .. ": " .. tostring(se)) end
      created = true
    end
    if not uv.fs_stat(p.trust) then
      local store, te = open_trust(p, true)
      if not store then return fail("failure", te) end
      -- Another init or trust add may have written it meanwhile: keep theirs.
      local saved, se = true, nil
      if not uv.fs_stat(p.trust) then saved, se = store:save() end
      store:close()
      if not saved then return fail("failure", "cannot write " .. p.trust .. ": " .. tostring(se)) end
    end
    mkdirs(p.handlers)
    local key = kp:public_hex()
    json_or(o, { key = key, data_dir = p.dir, created = created },
      (created and "created identity " or "identity exists: ") .. key .. "\ndata dir: " .. p.dir)
    return EXIT.ok
  end,
}

commands.id = {
  summary = "print this host's public key (--qr: as a QR code)",
  usage = "id [--qr] [--json]",
  opts = { qr = "flag" },
  run = function(o, p)
    if #o.pos > 0 then return fail("usage", "id takes no arguments") end
    local kp, e = load_identity(p)
    if not kp then return fail("failure", e) end
    local key = kp:public_hex()
    local raw = kp:public()
    if o.json then
      out(format.json { key = key, base64 = peernet.keys.base64(raw),
        fingerprint = peernet.keys.fingerprint(raw) })
    elseif o.qr then
      local m, qe = peernet.qr(key)
      if not m then return fail("failure", qe) end
      out(format.qr_text(m))
      out(key)
    else
      out(key)
    end
    return EXIT.ok
  end,
}

local function trust_entry_text(en)
  return ("%s  %s  %s  %s"):format(en.key, en.label or "-", en.addr or "-", en.added or "-")
end

commands.trust = {
  summary = "manage the trust list: trust add KEY [--label L] [--addr HOST:PORT] | rm KEY|LABEL | ls",
  usage = "trust add KEY [--label L] [--addr HOST:PORT] [--json]\n"
    .. "       peernet-host trust rm KEY|LABEL\n"
    .. "       peernet-host trust ls [--json]",
  opts = { label = "value", addr = "value" },
  run = function(o, p)
    local sub = o.pos[1]
    local store, e = open_trust(p, sub == "add" or sub == "rm")
    local code = commands.trust.sub(o, p, sub, store, e)
    if store then store:close() end
    return code
  end,
  sub = function(o, p, sub, store, e)
    if sub == "add" then
      if #o.pos ~= 2 then return fail("usage", "usage: peernet-host trust add KEY [--label L] [--addr HOST:PORT]") end
      if not peernet.keys.parse(o.pos[2]) then return fail("usage", "not a key: " .. o.pos[2]) end
      if not store then return fail("failure", e) end
      local kp = load_identity(p)
      if kp and peernet.keys.parse(o.pos[2]) == kp:public() then
        return fail("usage", "that is this host's own key")
      end
      local ok, ae = store:add(o.pos[2], { label = o.label, addr = o.addr })
      if not ok then return fail("usage", ae) end
      local saved, se = store:save()
      if not saved then return fail("failure", se) end
      local en = store:get(o.pos[2])
      json_or(o, en, "trusted " .. trust_entry_text(en))
      return EXIT.ok
    elseif sub == "rm" then
      if #o.pos ~= 2 then return fail("usage", "usage: peernet-host trust rm KEY|LABEL") end
      if not store then return fail("failure", e) end
      local en = store:get(o.pos[2])
      if not en then return fail("failure", "no peer with key or label '" .. o.pos[2] .. "' in " .. p.trust) end
      local ok, re = store:remove(o.pos[2])
      if not ok then return fail("failure", re) end
      local saved, se = store:save()
      if not saved then return fail("failure", se) end
      json_or(o, en, "removed " .. trust_entry_text(en))
      return EXIT.ok
    elseif sub == "ls" then
      if #o.pos ~= 1 then return fail("usage", "usage: peernet-host trust ls") end
      if not store then return fail("failure", e) end
      local list = store:list()
      if o.json then
        out(format.json(list))
      elseif #list == 0 then
        out("(the trust list is empty: peernet-host trust add KEY)")
      else
        local rows = {}
        for i, en in ipairs(list) do rows[i] = { en.key, en.label or "-", en.addr or "-", en.added or "-" } end
        out(format.columns({ "KEY", "LABEL", "ADDR", "ADDED" }, rows))
      end
      return EXIT.ok
    end
    return fail("usage", "trust needs add, rm or ls (peernet-host trust --help)")
  end,
}

-- ---- call / send through the control socket or a short-lived host -----------------

local ANSWER_EXIT = { remote = EXIT.remote, timeout = EXIT.timeout, unreachable = EXIT.unreachable,
  bad_request = EXIT.usage }

-- Runs req against the host of this data dir (control socket) or a
-- short-lived one; returns the answer map, or nil, exit_code, message.
local function perform(p, req, short_lived)
  local answer, e, kind = await(function(k)
    control.request(p.control, req, (req.timeout or DEFAULT_TIMEOUT_MS) + 2000, k)
  end)
  if answer then return answer end
  if kind ~= "no_host" then return nil, EXIT.failure, "control socket: " .. tostring(e) end
  return short_lived()
end

local function short_host(p)
  local kp, e = load_identity(p)
  if not kp then return nil, e end
  local h, he = peernet.host.new { secret = kp:secret(), listen = false }
  if not h then return nil, tostring(he) end
  return h
end

local function print_answer(o, answer)
  if answer.ok then
    local v, de = peernet.etf.decode(answer.value, { exact = true })
    if v == nil and de then return fail("failure", "undecodable reply: " .. de) end
    if o.json then out(format.json(v)) else out(format.pretty(v)) end
    return EXIT.ok
  end
  if answer.kind == "remote" then
    local r, re = peernet.etf.decode(answer.reason, { exact = true })
    -- A reason this side cannot map (an Elixir exit reason with a pid in
    -- it): still the peer's {error, _}, so exit 3, with why it is not shown.
    if r == nil and re then r = "(undecodable reason: " .. re .. ")" end
    if o.json then out(format.json { error = r, kind = "remote" }) end
    return fail("remote", "error: " .. (re and r or format.pretty(r)))
  end
  if o.json then out(format.json { error = answer.message, kind = answer.kind }) end
  return fail(ANSWER_EXIT[answer.kind] or EXIT.failure, tostring(answer.message))
end

local function call_or_send(op)
  return function(o, p)
    local n = #o.pos
    if n < 2 or n > 3 then
      return fail("usage", ("usage: peernet-host %s PEER HANDLE [ARGS] (peernet-host %s --help)"):format(op, op))
    end
    local timeout, te = ms_option(o, "timeout", DEFAULT_TIMEOUT_MS)
    if not timeout then return fail("usage", te) end
    local args, ae = args_literal.encode(o.pos[3] or "nil")
    if not args then return fail("usage", ae) end
    local entry, pe = resolve_peer(p, o.pos[1])
    if not entry then return fail("unreachable", pe) end
    local req = { op = op, peer = entry.key, handle = o.pos[2], args = args, timeout = timeout,
      addr = o.addr }
    local ok, answer, code, msg = run_task(function()
      return perform(p, req, function()
        local h, he = short_host(p)
        if not h then return nil, EXIT.failure, he end
        h:trust(entry.key)
        if not req.addr and not entry.addr then
          h:close()
          return nil, EXIT.unreachable, "no address for " .. o.pos[1]
            .. ": give --addr HOST:PORT or store one with `trust add KEY --addr`"
        end
        req.addr = req.addr or entry.addr
        local a = await(function(k) ops[op](h, req, k, { flush = true }) end)
        h:close()
        return a
      end)
    end)
    if not ok then return fail("failure", answer) end
    if not answer then return fail(code, msg) end
    if op == "send" and answer.ok then
      if o.json then out(format.json { ok = true }) end
      return EXIT.ok
    end
    return print_answer(o, answer)
  end
end

commands.call = {
  summary = "call HANDLE on PEER with ARGS and print the reply",
  usage = "call PEER HANDLE [ARGS] [--addr HOST:PORT] [--timeout MS] [--json]",
  opts = { addr = "value", timeout = "value" },
  run = call_or_send("call"),
}

commands.send = {
  summary = "send ARGS to HANDLE on PEER (no reply)",
  usage = "send PEER HANDLE [ARGS] [--addr HOST:PORT] [--timeout MS] [--json]",
  opts = { addr = "value", timeout = "value" },
  run = call_or_send("send"),
}

local function print_peers(o, list, running)
  if o.json then
    out(format.json { running = running, peers = list })
    return EXIT.ok
  end
  if #list == 0 then
    out("(no peers: peernet-host trust add KEY --addr HOST:PORT)")
    return EXIT.ok
  end
  local rows = {}
  local now = os.time()
  for i, peer in ipairs(list) do
    local seen = "-"
    if peer.last_seen and peer.last_seen > 0 then seen = ("%ds ago"):format(math.max(0, now - math.floor(peer.last_seen))) end
    rows[i] = { peer.key, peer.label or "-", peer.status, peer.addr or "-", seen }
  end
  out(format.columns({ "KEY", "LABEL", "STATUS", "ADDR", "LAST SEEN" }, rows))
  if not running then out("(no host runs on this data dir: probed for this command only)") end
  return EXIT.ok
end

commands.peers = {
  summary = "list the peers and their status",
  usage = "peers [--timeout MS] [--json]",
  opts = { timeout = "value" },
  run = function(o, p)
    if #o.pos > 0 then return fail("usage", "peers takes no arguments") end
    local timeout, te = ms_option(o, "timeout", PEERS_PROBE_MS)
    if not timeout then return fail("usage", te) end
    local ok, answer, code, msg = run_task(function()
      return perform(p, { op = "peers", timeout = timeout }, function()
        -- No host runs: dial every trusted peer that has an address, wait
        -- for the handshakes (bounded), report.
        local h, he = short_host(p)
        if not h then return nil, EXIT.failure, he end
        local store, se = open_trust(p)
        if not store then h:close() return nil, EXIT.failure, se end
        local pending, resume = 0, nil
        for _, en in ipairs(store:list()) do
          h:trust(en.key)
          if en.addr then
            pending = pending + 1
            -- each connect answers within the timeout, success or not
            ops.connect(h, en.key, en.addr, timeout, function()
              pending = pending - 1
              if pending == 0 and resume then resume() end
            end)
          end
        end
        await(function(k)
          if pending == 0 then return k() end
          resume = k
        end)
        local list = peer_list(h, p)
        h:close()
        return { ok = true, peers = list, running = false }
      end)
    end)
    if not ok then return fail("failure", answer) end
    if not answer then return fail(code, msg) end
    if not answer.ok then return fail(ANSWER_EXIT[answer.kind] or EXIT.failure, tostring(answer.message)) end
    return print_peers(o, answer.peers, answer.running ~= false)
  end,
}

commands.status = {
  summary = "show whether a host runs on this data dir, and its state",
  usage = "status [--json]",
  run = function(o, p)
    if #o.pos > 0 then return fail("usage", "status takes no arguments") end
    local ok, answer, code, msg = run_task(function()
      return perform(p, { op = "status", timeout = 3000 }, function()
        -- No host runs: what this data dir would serve.
        local kp, e = load_identity(p)
        if not kp then return nil, EXIT.failure, e end
        local store = open_trust(p)
        return { ok = true, status = { running = false, key = kp:public_hex(), data_dir = p.dir,
          trusted = store and #store:list() or 0 } }
      end)
    end)
    if not ok then return fail("failure", answer) end
    if not answer then return fail(code, msg) end
    if not answer.ok then return fail(ANSWER_EXIT[answer.kind] or EXIT.failure, tostring(answer.message)) end
    local s = answer.status
    if o.json then
      out(format.json(s))
      return EXIT.ok
    end
    out("key:      " .. s.key)
    out("data dir: " .. s.data_dir)
    if not s.running then
      out("host:     not running")
      out("trusted:  " .. s.trusted .. " peer(s)")
      return EXIT.ok
    end
    out(("host:     running (pid %d, %s, up %ds)"):format(s.pid, s.mode, s.uptime))
    out("listen:   " .. (s.listen or "-"))
    out(("peers:    %d connected of %d known"):format(s.connected, s.known))
    if s.scripts then
      for _, sc in ipairs(s.scripts) do
        out(("script:   %s %s"):format(sc.file, sc.ok and "ok" or ("FAILED " .. tostring(sc.err))))
      end
    end
    return EXIT.ok
  end,
}

-- ---- serving -----------------------------------------------------------------------------

local function control_handler(h, p, info)
  return function(req, reply)
    if req.op == "call" then return ops.call(h, req, reply) end
    if req.op == "send" then return ops.send(h, req, reply) end
    if req.op == "peers" then return reply { ok = true, peers = peer_list(h, p) } end
    if req.op == "status" then
      local list = h:peers()
      local connected = 0
      for _, peer in ipairs(list) do
        if peer.status == "connected" then connected = connected + 1 end
      end
      local rt = info.rt
      return reply { ok = true, status = {
        running = true, mode = info.mode, pid = uv.os_getpid(), key = h:key(), data_dir = p.dir,
        listen = info.listen, uptime = math.floor((uv.now() - info.started) / 1000),
        connected = connected, known = #list, stats = h:stats(),
        scripts = rt and rt:scripts() or nil,
      } }
    end
    reply { ok = false, kind = "bad_request", message = "unknown op " .. tostring(req.op) }
  end
end

local function print_report(report, json)
  local failed = 0
  for _, s in ipairs(report or {}) do
    if json then
      out(format.json { event = s.ok and "loaded" or "failed", file = s.file, handles = s.handles,
        error = s.err })
    end
    if s.ok then
      if not json then out(("loaded %s: %s"):format(s.file, table.concat(s.handles or {}, ", "))) end
    else
      failed = failed + 1
      err("handler script failed: ", tostring(s.err))
    end
  end
  return failed
end

-- SIGINT/SIGTERM -> on_signal(name) once; a second signal exits at once.
local function on_signals(weak, on_signal)
  local handles = {}
  local fired = false
  for _, name in ipairs { "sigint", "sigterm" } do
    local s = uv.new_signal()
    s:start(name, function()
      if fired then
        err("second ", name, ": stopping now")
        uv.stop()
        return
      end
      fired = true
      on_signal(name)
    end)
    if weak then s:unref() end
    handles[#handles + 1] = s
  end
  return function()
    for _, s in ipairs(handles) do
      if not s:is_closing() then s:close() end
    end
  end
end

commands.serve = {
  summary = "run this host: listen, follow the trust list, serve handler scripts",
  usage = "serve [--handlers DIR] [--listen ADDR:PORT] [--no-discovery] [--json]",
  opts = { handlers = "value", listen = "value", ["no-discovery"] = "flag" },
  run = function(o, p)
    if #o.pos > 0 then return fail("usage", "serve takes no arguments") end
    local kp, e = load_identity(p)
    if not kp then return fail("failure", e) end
    if control.probe(p.control) == "alive" then
      return fail("failure", "a host is already running on " .. p.dir)
    end
    -- LAN discovery (UDP announce, mDNS) and the network monitor, unless asked not to.
    local discover = not o["no-discovery"]
    local h, he = peernet.host.new { secret = kp:secret(), listen = o.listen, discovery = discover,
      mdns = discover, netmon = discover }
    if not h then return fail("failure", "cannot start the host: " .. tostring(he)) end
    local tok, tfe = h:trust_file(p.trust)
    if not tok then
      h:close()
      return fail("failure", "trust list: " .. tostring(tfe))
    end
    local listen = (o.listen or "[::]:4040"):gsub(":%d+$", "") .. ":" .. h:port()
    local info = { mode = "serve", started = uv.now(), listen = listen }

    local handlers_dir = o.handlers or p.handlers
    if peernet.runtime then
      local rt, re = peernet.runtime.new(h, { config = uv.fs_stat(p.config) and p.config or nil,
        trust = p.trust })
      if not rt then
        h:close()
        return fail("failure", "script runtime: " .. tostring(re))
      end
      info.rt = rt
      if uv.fs_stat(handlers_dir) then
        print_report(rt:load_dir(handlers_dir), o.json)
      elseif o.handlers then
        h:close()
        return fail("failure", "no such directory: " .. handlers_dir)
      end
    elseif o.handlers then
      h:close()
      return fail("failure", "--handlers needs the script runtime (peernet.runtime), not in this build")
    else
      local names = uv.fs_scandir(handlers_dir) and {} or nil
      if names then
        for name in uv.fs_scandir_next, uv.fs_scandir(handlers_dir) do
          if name:match("%.lua$") then names[#names + 1] = name end
        end
        if #names > 0 then
          err("warning: ", handlers_dir, " has scripts but this build has no script runtime; not loaded")
        end
      end
    end

    local server, se = control.serve(p.control, control_handler(h, p, info))
    if not server then
      if info.rt then info.rt:close() end
      h:close()
      return fail("failure", se)
    end
    -- With --json each line is one event object, for supervisors and tools.
    local function event(t, text)
      if o.json then out(format.json(t)) else out(text) end
    end
    h:on("connected", function(key) event({ event = "connected", key = key }, "connected " .. key) end)
    h:on("disconnected", function(key, reason)
      event({ event = "disconnected", key = key, reason = reason },
        "disconnected " .. key .. " (" .. tostring(reason) .. ")")
    end)

    local stop_signals
    stop_signals = on_signals(false, function(name)
      event({ event = "stopping", signal = name }, "stopping (" .. name .. ")")
      server.close()
      local function finish()
        if info.rt then info.rt:close() end
        h:close()
        stop_signals()
      end
      if info.rt then info.rt:drain(DRAIN_MS, finish) else finish() end
    end)
    -- Only now that the signals are handled: a supervisor may signal right after.
    event({ event = "serving", key = h:key(), listen = listen, control = p.control },
      "serving " .. h:key() .. " on " .. listen .. "\ncontrol socket " .. p.control)
    uv.run()
    server.close()
    return EXIT.ok
  end,
}

-- ---- run and check (need the script runtime, src/script on main) ----------------------

local function need_runtime(what)
  if peernet.runtime then return true end
  return nil, what .. " needs the script runtime (peernet.runtime), which this build does not have"
end

commands.run = {
  summary = "run a trusted Lua script with the peernet API and luv",
  usage = "run [--listen ADDR:PORT] SCRIPT.lua [ARGS...]",
  opts = { listen = "value" },
  stop = true,
  run = function(o, p, argv0)
    local script = o.pos[1]
    if not script then return fail("usage", "usage: peernet-host run SCRIPT.lua [ARGS...]") end
    local okr, re = need_runtime("run")
    if not okr then return fail("failure", re) end
    local chunk, le = loadfile(script, "t")
    if not chunk then return fail("failure", le) end
    local kp, e = load_identity(p)
    if not kp then return fail("failure", e) end
    if control.probe(p.control) == "alive" then
      return fail("failure", "a host is already running on " .. p.dir
        .. " (use `peernet-host call`, or another --data-dir)")
    end
    local h, he = peernet.host.new { secret = kp:secret(), listen = o.listen or false, weak = true }
    if not h then return fail("failure", "cannot start the host: " .. tostring(he)) end
    local tok, tfe = h:trust_file(p.trust)
    if not tok then
      h:close()
      return fail("failure", "trust list: " .. tostring(tfe))
    end
    local code = EXIT.ok
    local rt, rte = peernet.runtime.new(h, {
      config = uv.fs_stat(p.config) and p.config or nil,
      trust = p.trust,
      on_error = function(msg)
        io.stderr:write(tostring(msg), "\n")
        code = EXIT.failure
        uv.stop()
      end,
    })
    if not rt then
      h:close()
      return fail("failure", "script runtime: " .. tostring(rte))
    end
    -- Why a link closed is worth a line even here: the script's output is
    -- stdout, so it goes to stderr, as the host's own log lines do.
    h:on("disconnected", function(key, reason)
      io.stderr:write("peernet [info] disconnected ", key, " (", tostring(reason), ")\n")
    end)
    local info = { mode = "run", started = uv.now(), rt = rt,
      listen = o.listen and (o.listen:gsub(":%d+$", "") .. ":" .. h:port()) or nil }
    local server = control.serve(p.control, control_handler(h, p, info), { weak = true })
    -- `arg` as lua(1) sets it: the script at 0, its arguments from 1.
    local script_args = { [0] = script, [-1] = argv0 .. " run" }
    for i = 2, #o.pos do script_args[i - 1] = o.pos[i] end
    _G.arg = script_args
    -- One table: the script's global and its require "peernet" (rt:api()
    -- falls back to the module for peernet.host and the rest).
    _G.peernet = rt:api()
    package.loaded.peernet = _G.peernet
    -- The script's print() goes out a line at a time, as under lua(1).
    io.stdout:setvbuf("line")
    local stop_signals = on_signals(true, function()
      if server then server.close() end
      rt:drain(DRAIN_MS, function() uv.stop() end)
    end)
    rt:spawn(chunk, table.unpack(script_args, 1, #script_args))
    uv.run()
    stop_signals()
    if server then server.close() end
    rt:close()
    h:close()
    return code
  end,
}

commands.check = {
  summary = "load handler scripts in the sandbox and report errors (for CI)",
  usage = "check SCRIPT.lua... [--json]",
  run = function(o, p)
    if #o.pos == 0 then return fail("usage", "usage: peernet-host check SCRIPT.lua...") end
    local okr, re = need_runtime("check")
    if not okr then return fail("failure", re) end
    local results, failed = {}, 0
    local config = uv.fs_stat(p.config) and p.config or nil
    for i, file in ipairs(o.pos) do
      local ok, ce = peernet.runtime.check(file, { config = config })
      results[i] = { file = file, ok = ok == true, error = ce }
      if not ok then failed = failed + 1 end
    end
    if o.json then
      out(format.json(results))
    else
      for _, r in ipairs(results) do
        if r.ok then out(r.file, ": ok") else io.stderr:write(tostring(r.error), "\n") end
      end
    end
    return failed == 0 and EXIT.ok or EXIT.failure
  end,
}

-- ---- help and main ---------------------------------------------------------------

local ORDER = { "init", "id", "trust", "serve", "run", "call", "send", "peers", "status", "check" }

local function help_text()
  local lines = {
    "usage: peernet-host [--data-dir DIR] COMMAND [ARGS] [--json] [--help]",
    "",
    "Runs one PeerNet peer, programmed in Lua. Peers are named by public key",
    "(64 hex digits, or base64) or by their label in the trust list.",
    "",
    "commands:",
  }
  for _, name in ipairs(ORDER) do
    lines[#lines + 1] = ("  %-8s %s"):format(name, commands[name].summary)
  end
  for _, l in ipairs {
    "",
    "options for every command:",
    "  --data-dir DIR  identity, trust list, handlers (default: $PEERNET_HOME,",
    "                  else $XDG_DATA_HOME/peernet, else ~/.local/share/peernet)",
    "  --json          print data as JSON (docs/cli.md says how values map)",
    "  --help          help for the command",
    "  --version       print the version and the libraries it runs on",
    "",
    "ARGS is a Lua literal evaluated in an empty sandbox, e.g. '{room = \"kitchen\"}';",
    "atom\"x\", tuple(...), null, map{} and bigint\"...\" write the other Erlang terms.",
    "",
    "call, send, peers and status go through the control socket of a host",
    "running on the data dir (serve or run), else start a short-lived host.",
    "",
    "trust add/rm and init take turns on the trust list: each waits up to",
    "$PEERNET_LOCK_WAIT_MS (default 10000) for another writer, then exits 1.",
    "",
    "The host logs warnings and errors on stderr; with PEERNET_DEBUG set in the",
    "environment, its info and debug lines too (every connection and why it closed).",
    "",
    "exit codes:",
    "  0  success",
    "  1  failure (data dir, identity, files, a script that does not load or run,",
    "     is not yours alone, stdout closed, or a reply that cannot be decoded",
    "     here: it holds a pid, a ref, a fun)",
    "  2  usage error (unknown command or option, bad ARGS or key)",
    "  3  the peer answered {error, Reason} (Reason is printed)",
    "  4  timeout: no reply or no connection within --timeout",
    "  5  peer unreachable: not in the trust list, no address, cannot connect,",
    "     or the connection closed before the reply",
  } do lines[#lines + 1] = l end
  return table.concat(lines, "\n")
end

local function version_text()
  return ("peernet-host %s (protocol v%d; %s, libsodium %s, libuv %s)"):format(peernet.version,
    peernet.protocol_version, _VERSION, peernet.sodium_version, uv.version_string())
end

local main

function M.main(argv)
  io.stdout:setvbuf("full")
  stdout_error = nil
  local code = main(argv)
  local ok, e = io.stdout:flush()
  if not ok and not stdout_error then stdout_error = tostring(e) end
  if stdout_error then
    err("cannot write to standard output: " .. stdout_error)
    if code == EXIT.ok then code = EXIT.failure end
  end
  return code
end

function main(argv)
  local argv0 = (argv[0] or "peernet-host"):match("[^/]*$")
  -- Global options may come before the command.
  local i = 1
  local pre = {}
  while argv[i] and argv[i]:match("^%-") do
    local a = argv[i]
    if a == "--version" then out(version_text()) return EXIT.ok end
    if a == "--help" or a == "-h" then out(help_text()) return EXIT.ok end
    if a == "--data-dir" then
      if not argv[i + 1] then return fail("usage", "--data-dir needs a value") end
      pre["data-dir"] = argv[i + 1]
      i = i + 2
    elseif a:match("^%-%-data%-dir=") then
      pre["data-dir"] = a:match("=(.*)$")
      i = i + 1
    elseif a == "--json" then
      pre.json = true
      i = i + 1
    else
      return fail("usage", "unknown option " .. a .. " (try --help)")
    end
  end
  local name = argv[i]
  if not name then
    io.stderr:write(help_text(), "\n")
    return EXIT.usage
  end
  if name == "help" then
    local c = commands[argv[i + 1] or ""]
    out(c and ("usage: peernet-host " .. c.usage .. "\n\n" .. c.summary) or help_text())
    return EXIT.ok
  end
  if name == "version" then out(version_text()) return EXIT.ok end
  local cmd = commands[name]
  if not cmd then return fail("usage", "unknown command '" .. name .. "' (try --help)") end
  local o, pe = parse(argv, i + 1, cmd)
  if not o then return fail("usage", name .. ": " .. pe .. " (peernet-host " .. name .. " --help)") end
  for k, v in pairs(pre) do if o[k] == nil then o[k] = v end end
  if o.help then
    out("usage: peernet-host " .. cmd.usage .. "\n\n" .. cmd.summary .. "\n\nsee docs/cli.md, and peernet-host --help for exit codes")
    return EXIT.ok
  end
  local dir, de = o["data-dir"], nil
  if not dir then dir, de = default_data_dir() end
  if not dir then return fail("usage", de) end
  return cmd.run(o, paths(dir), argv0)
end

return M
