-- Network helpers for specs: running luv's loop until something happens,
-- hosts on 127.0.0.1, and a raw peer that speaks the wire by hand (TCP via
-- luv, the handshake and envelopes via the peernet module) so specs can
-- send exactly the bytes they want.
local peernet = require "peernet"
local uv = require "luv"

local N = {}

-- Runs the loop until cond() is true or ms (a safety bound, not a timing
-- assertion) pass; returns cond().
function N.wait(cond, ms)
  local expired = false
  local t = uv.new_timer()
  t:start(ms or 10000, 0, function() expired = true end)
  while not cond() and not expired do uv.run("once") end
  t:close()
  return cond() and true or false
end

-- Runs the loop for ms, whatever happens.
function N.spin(ms)
  local over = false
  local t = uv.new_timer()
  t:start(ms, 0, function() over = true end)
  while not over do uv.run("once") end
  t:close()
end

function N.keys() return peernet.keys.generate() end

-- Log lines of every host made here (specs assert on what was logged).
N.logs = {}
local function capture(level, msg)
  N.logs[#N.logs + 1] = level .. " " .. msg
  if #N.logs > 2000 then table.remove(N.logs, 1) end
end

-- The first captured log line that matches pattern, or nil.
function N.logged(pattern)
  for _, l in ipairs(N.logs) do
    if l:find(pattern) then return l end
  end
  return nil
end

-- A host on 127.0.0.1 with a free port; opts are host.new settings.
function N.host(kp, opts)
  local cfg = { secret = kp:secret(), listen = "127.0.0.1:0", log = capture }
  for k, v in pairs(opts or {}) do cfg[k] = v end
  return assert(peernet.host.new(cfg))
end

function N.addr(host) return "127.0.0.1:" .. host:port() end

-- Connects a to b (which trust each other) and waits for the handshake.
function N.connect(a, bkey, addr)
  local res
  assert(a:connect(bkey, addr, function(ok, err) res = { ok, err } end))
  assert(N.wait(function() return res end), "connect callback never ran")
  return res[1], res[2]
end

-- Two hosts trusting each other, a connected to b.
function N.pair(opts_a, opts_b)
  local ka, kb = N.keys(), N.keys()
  local a = N.host(ka, opts_a)
  local b = N.host(kb, opts_b)
  a:trust(kb:public_hex())
  b:trust(ka:public_hex())
  assert(N.connect(a, kb:public_hex(), N.addr(b)))
  assert(N.wait(function() return (b:peer(ka:public_hex()) or {}).status == "connected" end))
  -- a dialled: its settle ping is answered before a spec counts frames.
  -- On a busy machine it may have pinged again before the pong came; a
  -- round trip behind those pings lets their pongs arrive first.
  assert(N.wait(function() return not a:peer(kb:public_hex()).settling end))
  local synced
  assert(a:call(kb:public_hex(), "spec_sync", nil, function() synced = true end))
  assert(N.wait(function() return synced end))
  return a, b, ka, kb
end

-- A call, waited for: returns ok, value_or_err, kind.
function N.call(host, key, name, args, opts)
  local res
  local ok, err = host:call(key, name, args, function(...) res = table.pack(...) end, opts)
  if not ok then return nil, err, "local" end
  assert(N.wait(function() return res end), "call callback never ran")
  return res[1], res[2], res[3]
end

function N.close(...)
  for _, h in ipairs({ ... }) do h:close() end
  uv.run("nowait")
end

-- ---- raw peer ---------------------------------------------------------------

local Raw = {}
Raw.__index = Raw

-- Opens a TCP connection to 127.0.0.1:port; bytes received pile up in
-- self.inbox, self.eof is set when the host closes.
function N.raw(port)
  local self = setmetatable({ inbox = "", eof = false, tcp = uv.new_tcp() }, Raw)
  local connected
  self.tcp:connect("127.0.0.1", port, function(err)
    assert(not err, err)
    connected = true
    self.tcp:read_start(function(rerr, data)
      if rerr or not data then self.eof = true return end
      if not self.paused then self.inbox = self.inbox .. data end
    end)
  end)
  assert(N.wait(function() return connected end), "raw connect failed")
  return self
end

function Raw:write(bytes)
  self.tcp:write(bytes)
end

-- Takes exactly n bytes from the inbox, waiting for them.
function Raw:take(n)
  assert(N.wait(function() return #self.inbox >= n or self.eof end), "no data from the host")
  assert(#self.inbox >= n, "connection closed after " .. #self.inbox .. " of " .. n .. " bytes")
  local s = self.inbox:sub(1, n)
  self.inbox = self.inbox:sub(n + 1)
  return s
end

-- Takes one whole frame (header included); returns header..body, body.
function Raw:frame()
  local hdr = self:take(4)
  local body = self:take(string.unpack(">I4", hdr))
  return hdr .. body, body
end

function Raw:wait_closed() return N.wait(function() return self.eof end) end

function Raw:close()
  if not self.tcp:is_closing() then self.tcp:close() end
end

-- Runs the PeerNet handshake as initiator with static secret `secret`,
-- accepting whatever key answers. Returns the handshake object (seal/open).
function Raw:handshake(secret)
  local hs = assert(peernet.handshake.new { role = "initiator", static = secret,
    verify = function() return true end })
  self:write(string.pack(">s4", assert(hs:write())))
  local _, m2 = self:frame()
  assert(hs:read(m2))
  self:write(string.pack(">s4", assert(hs:write())))
  self.hs = hs
  return hs
end

-- Seals one envelope (bytes with version byte) and sends it as a frame.
function Raw:send_env(env)
  self:write(string.pack(">s4", assert(self.hs:seal(env))))
end

-- Reads one frame and opens it: the decoded envelope table.
function Raw:recv_env()
  local _, body = self:frame()
  return assert(peernet.envelope.decode(assert(self.hs:open(body))))
end

-- ---- a listening peer that buffers like the Elixir reference ------------------

-- Answers dials as a responder the way shared/reference's Connection does:
-- bytes that came in the same read as M3 stay in its buffer, unread, until
-- another read delivers more; when the dialler closes, whatever is still
-- buffered is dropped. Calls are echoed, sends recorded in self.sends,
-- pings answered. self.port is where it listens; self.closed counts the
-- connections the dialler closed, self.done the handshakes completed.
-- With opts.held its acceptor stands still (as the reference's does when
-- suspended): connections are taken, counted in self.held, and read only
-- after self.release().
local sigpipe -- answering a dialler that has gone must not kill the spec
function N.m3_buffering_peer(secret, opts)
  if not sigpipe then
    sigpipe = uv.new_signal()
    sigpipe:start("sigpipe", function() end)
    sigpipe:unref()
  end
  local self = { sends = {}, calls = {}, stuck = 0, closed = 0, done = 0, held = 0, server = uv.new_tcp() }
  local waiting = {}
  local function take_frame(st)
    if #st.buf < 4 then return nil end
    local n = string.unpack(">I4", st.buf)
    if #st.buf < 4 + n then return nil end
    local body = st.buf:sub(5, 4 + n)
    st.buf = st.buf:sub(5 + n)
    return body
  end
  local function on_env(c, st, e)
    if e.kind == "call" then
      self.calls[#self.calls + 1] = e.term
      c:write(string.pack(">s4", assert(st.hs:seal(peernet.envelope.reply(e.id_str or e.id, true, e.term)))))
    elseif e.kind == "send" then
      self.sends[#self.sends + 1] = peernet.etf.decode("\131" .. e.term)
    elseif e.kind == "ping" then
      c:write(string.pack(">s4", assert(st.hs:seal(peernet.envelope.pong(e.nonce)))))
    end
  end
  local function serve(c)
    local st = { buf = "", hs = assert(peernet.handshake.new { role = "responder", static = secret,
      verify = function() return true end }) }
    c:read_start(function(err, data)
      if err or not data then
        if #st.buf > 0 then self.stuck = self.stuck + 1 end -- dropped unread, as the reference does
        self.closed = self.closed + 1
        c:close()
        return
      end
      st.buf = st.buf .. data
      if not st.hs:is_done() then
        for body in take_frame, st do
          assert(st.hs:read(body))
          if st.hs:next() == "write" then c:write(string.pack(">s4", assert(st.hs:write()))) end
          if st.hs:is_done() then
            self.done = self.done + 1
            return -- the rest waits for the next read
          end
        end
        return
      end
      for body in take_frame, st do
        on_env(c, st, assert(peernet.envelope.decode(assert(st.hs:open(body)))))
      end
    end)
  end
  assert(self.server:bind("127.0.0.1", 0))
  assert(self.server:listen(16, function()
    local c = uv.new_tcp()
    self.server:accept(c)
    if opts and opts.held then
      self.held = self.held + 1
      waiting[#waiting + 1] = c
    else
      serve(c)
    end
  end))
  function self.release()
    opts = nil
    for _, c in ipairs(waiting) do serve(c) end
    waiting = {}
  end
  self.port = self.server:getsockname().port
  function self.close() if not self.server:is_closing() then self.server:close() end end
  return self
end

-- The kernel's ephemeral port range: where port 0 binds and outgoing
-- connects take their local port from.
local function ephemeral_range()
  local f = io.open("/proc/sys/net/ipv4/ip_local_port_range")
  local lo, hi
  if f then
    lo, hi = f:read("l"):match("^(%d+)%s+(%d+)")
    f:close()
  end
  return tonumber(lo) or 32768, tonumber(hi) or 60999
end

local function random_u16()
  local f = assert(io.open("/dev/urandom", "rb"))
  local b = f:read(2)
  f:close()
  return b:byte(1) * 256 + b:byte(2)
end

-- A port free right now that nobody else takes by chance: it lies outside
-- the ephemeral range, where a port 0 bind or an outgoing connect anywhere
-- on the machine (a spec running in parallel, the host's own redials)
-- could take it before the spec binds it ("address in use").
local function free_port(probe)
  local lo, hi = ephemeral_range()
  local first, last = 10000, lo - 1
  if last - first < 1000 then first, last = hi + 1, 65535 end
  for _ = 1, 100 do
    local port = first + random_u16() % (last - first + 1)
    if probe(port) then return port end
  end
  error("no free port in " .. first .. "-" .. last)
end

local function closed(handle)
  -- luv must not collect a handle whose close is still pending.
  local done = false
  handle:close(function() done = true end)
  N.wait(function() return done end)
end

-- A TCP port on 127.0.0.1 for a listener a spec starts later (a peer coming
-- back on its own address).
function N.free_tcp_port()
  return free_port(function(port)
    local t = uv.new_tcp()
    -- libuv reports "address in use" at listen, not bind.
    local ok = t:bind("127.0.0.1", port) and t:listen(1, function() end)
    closed(t)
    return ok
  end)
end

-- A UDP port (for a spec's own announce port).
function N.free_udp_port()
  return free_port(function(port)
    local u = uv.new_udp()
    local ok = u:bind("0.0.0.0", port)
    closed(u)
    return ok
  end)
end

-- Sends each datagram to dest (default 127.0.0.1) on port, and waits until
-- all have left.
function N.udp_send(port, dgrams, dest)
  local u = uv.new_udp()
  assert(u:bind("0.0.0.0", 0))
  u:set_broadcast(true)
  local sent = 0
  for _, d in ipairs(dgrams) do
    assert(u:send(d, dest or "127.0.0.1", port, function(err) assert(not err, err); sent = sent + 1 end))
  end
  assert(N.wait(function() return sent == #dgrams end))
  u:close()
end

return N
