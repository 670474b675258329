-- Operations on a host, one code path for the control socket (a host that
-- serves or runs a script) and a short-lived host: connect, call, send,
-- the peer list, and the control socket's handler of requests. The answers
-- are the control protocol's (lua/peernet/control.lua).
local uv = require "luv"
local peernet = require "peernet"
local K = peernet.kinds
local datadir = require "peernet.cli.datadir"
local options = require "peernet.cli.options"

local M = {}

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
function M.connect(h, key, addr, timeout_ms, cb)
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
    finish(false, K.timeout, ("no connection to %s within %d ms"):format(key, timeout_ms))
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
  if not options.is_ms(req.timeout) then return nil, ("timeout must be 1..%d ms"):format(peernet.ms_max) end
  if not peernet.keys.parse(req.peer) then return nil, "peer must be a key" end
  return true
end

function M.call(h, req, reply)
  local okr, why = check_call_request(req)
  if not okr then return reply { ok = false, kind = "bad_request", message = why } end
  local start = uv.now()
  M.connect(h, req.peer, req.addr, req.timeout, function(ok, kind, msg)
    if not ok then return reply { ok = false, kind = kind, message = msg } end
    local left = math.max(1, req.timeout - (uv.now() - start))
    local sent, e = h:call(req.peer, req.handle, req.args:sub(2), function(cok, v, ckind)
      if cok then return reply { ok = true, value = "\131" .. v } end
      if ckind == K.remote then return reply { ok = false, kind = K.remote, reason = "\131" .. v } end
      if ckind == K.timeout then
        return reply { ok = false, kind = K.timeout, message = ("no reply within %d ms"):format(req.timeout) }
      end
      reply { ok = false, kind = "closed", message = "the connection closed before the reply" }
    end, { timeout = math.tointeger(left), raw = true })
    if not sent then reply { ok = false, kind = "unreachable", message = tostring(e) } end
  end)
end

-- opts.flush: wait until the message has been written to the socket (a
-- short-lived host closes right after; a running one need not wait).
function M.send(h, req, reply, opts)
  local okr, why = check_call_request(req)
  if not okr then return reply { ok = false, kind = "bad_request", message = why } end
  M.connect(h, req.peer, req.addr, req.timeout, function(ok, kind, msg)
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

-- The host's peers with their trust list labels, sorted by label or key.
function M.peer_list(h, p)
  local labels = {}
  local store = datadir.open_trust(p)
  if store then
    for _, e in ipairs(store:list()) do labels[e.key] = e.label end
  end
  local list = {}
  for _, peer in ipairs(h:peers()) do
    list[#list + 1] = {
      key = peer.key, fingerprint = peernet.keys.fingerprint(peernet.keys.parse(peer.key)),
      label = labels[peer.key], status = peer.status, trusted = peer.trusted,
      addr = peer.addr ~= "" and peer.addr or nil, last_seen = math.floor(peer.last_seen),
      connections = peer.connections,
    }
  end
  table.sort(list, function(a, b) return (a.label or a.key) < (b.label or b.key) end)
  return list
end

-- The control socket's handler for host h of data dir p. info: mode
-- ("serve" | "run"), started (uv.now()), listen, rt (the script runtime).
function M.handler(h, p, info)
  return function(req, reply)
    if req.op == "call" then return M.call(h, req, reply) end
    if req.op == "send" then return M.send(h, req, reply) end
    if req.op == "peers" then return reply { ok = true, peers = M.peer_list(h, p) } end
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

return M
