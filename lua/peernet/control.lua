-- The control socket: how `peernet-host call/send/peers/status` reach a host
-- already running on the same data dir instead of starting a second one
-- with the same identity.
--
-- A unix socket <data_dir>/control.sock, mode 0600 inside the 0700 data dir.
-- Framing: a 4-byte big-endian length, then that many bytes of one ETF term
-- (peernet.etf, with the version byte). A request is a map with binary keys:
--   {op = "call", peer = HEX, handle = NAME, args = ETF, timeout = MS, addr = "H:P"?}
--   {op = "send", peer = HEX, handle = NAME, args = ETF, timeout = MS, addr = "H:P"?}
--   {op = "peers"}   {op = "status"}
--   {op = "trust", action = "add", key = HEX, label = TEXT?, addr = "H:P"?}
--   {op = "trust", action = "rm", peer = KEY | LABEL}   (lua/peernet/cli/trustedit.lua)
--   {op = "settings"}   (serve only: {ok = true, file = PATH, settings = {...}})
-- (args are ETF bytes inside the term, so atoms, tuples and bigints cross
-- without loss). The answer is one map:
--   {ok = true, value = ETF | peers = {...} | status = {...} | entry = {...}}
--   {ok = false, kind = K.remote, reason = ETF}
--   {ok = false, kind = K.timeout | "unreachable" | "not_connected" | "bad_request" | ..., message = TEXT}
-- (K is peernet.kinds, src/core/reason.h PN_KINDS: the kinds a Lua caller
-- sees; the others are the control socket's own.)
--
-- Bounds: a request is at most MAX_REQUEST bytes and an answer MAX_FRAME (a
-- bigger request closes the connection after a bad_request answer); a
-- request decodes to at most MAX_REQUEST_TERMS Lua values and an answer to
-- MAX_ANSWER_TERMS (checked before any is built), at most MAX_CLIENTS connections,
-- one request at a time per connection, and IDLE_MS to send a whole
-- request. A client that misbehaves is closed; the host goes on.
local uv = require "luv"
local peernet = require "peernet"
local K = peernet.kinds

local M = {}

M.MAX_FRAME = 16 * 1024 * 1024 -- an answer: room for a big peers/status list
M.MAX_REQUEST = 2 * 1024 * 1024 -- a request: its args must fit a 1 MiB host frame anyway
-- Lua values one decode may build: a request is a small map (its args stay
-- ETF bytes), and without a bound 2 MiB of [] would become 2 million
-- tables (about 160 MB). Answers carry peers/status lists for at most
-- 4,096 trusted peers.
M.MAX_REQUEST_TERMS = 4096
M.MAX_ANSWER_TERMS = 1024 * 1024
M.MAX_CLIENTS = 32
M.IDLE_MS = 10000

function M.path(data_dir) return data_dir .. "/control.sock" end

-- Frames are those of the host's links (peernet.frame, src/core/frame.c):
-- the reader refuses a header over its cap before any body byte is kept,
-- and with it the whole chunk that holds it.
local function frame(t)
  local bytes, err = peernet.etf.encode(t, { max = M.MAX_FRAME })
  if not bytes then return nil, err end
  return peernet.frame.encode(bytes, M.MAX_FRAME)
end

local function safe_close(h)
  if h and not h:is_closing() then h:close() end
end

-- ---- server -----------------------------------------------------------------

-- Starts serving at path. handle(request, reply) runs one request; reply(t)
-- must be called exactly once. opts.weak: the socket does not keep the loop
-- alive (peernet-host run). Returns a server object (server:close()) or
-- nil, err. Refuses when a live host answers on path; removes a stale file.
function M.serve(path, handle, opts)
  opts = opts or {}
  local probe = M.probe(path)
  if probe == "alive" then return nil, "a host is already running on this data dir (" .. path .. ")" end
  if probe == "stale" then os.remove(path) end
  local pipe = uv.new_pipe(false)
  local ok, err = pipe:bind(path)
  if not ok then
    pipe:close()
    return nil, "control socket " .. path .. ": " .. tostring(err)
  end
  -- The data dir is 0700 already; the socket itself is 0600 as well.
  uv.fs_chmod(path, tonumber("600", 8))
  local clients, nclients = {}, 0
  local server = { path = path }

  local function drop(c)
    if clients[c] then
      clients[c] = nil
      nclients = nclients - 1
    end
    safe_close(c.timer)
    safe_close(c.pipe)
  end

  local function arm(c)
    c.timer:stop()
    c.timer:start(M.IDLE_MS, 0, function() drop(c) end)
  end

  local process

  local function answer(c, t, close_after)
    local data, ferr = frame(t)
    if not data then data = frame { ok = false, kind = "internal", message = tostring(ferr) } end
    if c.pipe:is_closing() then return end
    c.pipe:write(data, function() if close_after then drop(c) end end)
    c.busy = false
    if not close_after then
      arm(c)
      process(c)
    end
  end

  -- Requests are answered in the order they came, one at a time; a bad
  -- frame after them is answered (and the connection closed) in its turn.
  function process(c)
    if c.busy or c.pipe:is_closing() then return end
    local body = table.remove(c.queue, 1)
    if not body then
      if c.bad then answer(c, { ok = false, kind = "bad_request", message = c.bad }, true) end
      return
    end
    c.queued = c.queued - 4 - #body
    c.timer:stop()
    local req, derr = peernet.etf.decode(body, { max = M.MAX_FRAME, terms = M.MAX_REQUEST_TERMS })
    if type(req) ~= "table" or type(req.op) ~= "string" then
      return answer(c, { ok = false, kind = "bad_request",
        message = derr or "a request is a map with an op" }, true)
    end
    c.busy = true
    local answered = false
    local okh, herr = pcall(handle, req, function(t)
      if answered then return end
      answered = true
      answer(c, t, false)
    end)
    if not okh and not answered then
      answered = true
      answer(c, { ok = false, kind = "internal", message = tostring(herr) }, false)
    end
  end

  local lok, lerr = pipe:listen(16, function(lerr2)
    if lerr2 then return end
    local cp = uv.new_pipe(false)
    if not pipe:accept(cp) then cp:close() return end
    if nclients >= M.MAX_CLIENTS then cp:close() return end
    local c = { pipe = cp, timer = uv.new_timer(), reader = peernet.frame.reader(M.MAX_REQUEST),
      queue = {}, queued = 0 }
    if opts.weak then cp:unref() c.timer:unref() end
    clients[c] = true
    nclients = nclients + 1
    arm(c)
    cp:read_start(function(rerr, data)
      if rerr or not data then return drop(c) end
      if c.bad then return end
      -- Bytes held, whole requests waiting their turn included.
      if c.reader:buffered() + c.queued + #data > M.MAX_REQUEST + 4 then
        cp:read_stop() -- one answer, then the connection closes
        return answer(c, { ok = false, kind = "bad_request", message = "request too large" }, true)
      end
      local bodies, ferr = c.reader:feed(data)
      if bodies then
        for _, body in ipairs(bodies) do
          c.queue[#c.queue + 1] = body
          c.queued = c.queued + 4 + #body
        end
      else
        cp:read_stop()
        c.bad = ferr
      end
      process(c)
    end)
  end)
  if not lok then
    pipe:close()
    os.remove(path)
    return nil, "control socket " .. path .. ": " .. tostring(lerr)
  end
  if opts.weak then pipe:unref() end

  function server.close()
    for c in pairs(clients) do drop(c) end
    if not pipe:is_closing() then
      pipe:close()
      os.remove(path)
    end
  end
  function server.clients() return nclients end
  return server
end

-- ---- client -----------------------------------------------------------------

-- "alive" when something accepts on path, "stale" when the file exists but
-- nobody listens, "none" when there is no file. Runs the loop briefly.
function M.probe(path)
  if not uv.fs_stat(path) then return "none" end
  local done, result
  local p = uv.new_pipe(false)
  p:connect(path, function(err)
    result = err and "stale" or "alive"
    done = true
  end)
  while not done do uv.run("once") end
  p:close()
  return result
end

-- Sends one request and calls cb(answer) or cb(nil, err, "no_host") when
-- nobody serves path. timeout_ms bounds the whole exchange.
function M.request(path, req, timeout_ms, cb)
  local data, ferr = frame(req)
  if not data then return cb(nil, ferr, "bad_request") end
  local p = uv.new_pipe(false)
  local timer = uv.new_timer()
  local r = peernet.frame.reader(M.MAX_FRAME)
  local finished = false
  local function finish(...)
    if finished then return end
    finished = true
    safe_close(timer)
    safe_close(p)
    cb(...)
  end
  timer:start(timeout_ms, 0, function() finish(nil, "no answer from the running host", K.timeout) end)
  p:connect(path, function(err)
    if err then return finish(nil, err, "no_host") end
    p:write(data)
    p:read_start(function(rerr, chunk)
      if rerr or not chunk then return finish(nil, "the running host closed the control connection", K.closed) end
      local bodies, berr = r:feed(chunk)
      if not bodies then return finish(nil, berr, K.closed) end
      local body = bodies[1]
      if not body then return end
      local t, derr = peernet.etf.decode(body, { max = M.MAX_FRAME, terms = M.MAX_ANSWER_TERMS })
      if type(t) ~= "table" then return finish(nil, "bad answer: " .. tostring(derr), K.closed) end
      finish(t)
    end)
  end)
end

return M
