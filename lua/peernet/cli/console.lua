-- The device's side of `peernet-host console` (docs/remote.md): the
-- sessions behind serve's reserved handle peernet.console, each one key's
-- own sandboxed state (peernet.console.new: the memory cap, instruction
-- budget and time slice of a handler script), with the host.* grants of
-- its key's console right (config.lua's peers, read again before each line).
--
--   {open = true}                 --> {session = ID}
--   {session = ID, line = TEXT}   --> {n = N, v = {results...}} | error message
--                                     (later, when the line waits for host.exec)
--   {session = ID, close = true}  --> true
--
-- A session answers only the key that opened it. It ends after IDLE_MS
-- without a line, when that key's link goes, or when the key closes it.
local uv = require "luv"
local peernet = require "peernet"

local M = {}

M.HANDLE = "peernet.console"
M.MAX_SESSIONS = 8          -- open at once on a device, across keys
M.KEY_SESSIONS_MAX = 2      -- of them one key may hold: one key cannot lock the others out
M.IDLE_MS = 15 * 60 * 1000  -- a session without a line this long is closed
M.LOGGED_CHARS = 80         -- of each line, in the device's log

-- Unguessable, though a session also checks its key.
local function new_id()
  return (assert(uv.random(8)):gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- A set of sessions. opts: log(level, msg), who(key) -> "KEYPREFIX (label)",
-- grants(key) -> the console right's value (a table grants host.*), config
-- (the file that grants, named in a refusal).
function M.new(opts)
  local self = {}
  local sessions, count = {}, 0

  local function close(id, why)
    local s = sessions[id]
    if not s then return end
    sessions[id], count = nil, count - 1
    s.state:close()
    -- A line waiting for its program is answered: the program was killed.
    if s.req then s.req:error("the console session closed (" .. why .. ")") end
    if not s.timer:is_closing() then s.timer:close() end
    opts.log("info", ("console %s of %s closed (%s)"):format(id, opts.who(s.key), why))
  end

  local function touch(id)
    local s = sessions[id]
    s.timer:stop()
    s.timer:start(M.IDLE_MS, 0, function() close(id, "idle") end)
  end

  local function open(from)
    if count >= M.MAX_SESSIONS then
      return nil, ("too many console sessions (%d open on this device)"):format(M.MAX_SESSIONS)
    end
    local mine = 0
    for _, s in pairs(sessions) do
      if s.key == from then mine = mine + 1 end
    end
    if mine >= M.KEY_SESSIONS_MAX then
      return nil, ("too many console sessions of this key (%d open: close one, or wait for its idle timeout)")
        :format(M.KEY_SESSIONS_MAX)
    end
    local id = new_id()
    while sessions[id] do id = new_id() end
    sessions[id] = { key = from, state = peernet.console.new(), timer = uv.new_timer() }
    count = count + 1
    touch(id)
    opts.log("info", ("console %s opened by %s"):format(id, opts.who(from)))
    return { session = id }
  end

  local function grant(s)
    local g = opts.grants and opts.grants(s.key)
    s.state:grant(type(g) == "table" and g or nil, "the console of " .. opts.who(s.key), opts.config or "config.lua")
  end

  -- The handler of peernet.console (after the right is checked).
  function self.handle(from, args, req)
    if type(args) ~= "table" then return nil, "expected {open = true} or {session = ID, line = TEXT}" end
    if args.open == true then return open(from) end
    local id = args.session
    local s = type(id) == "string" and sessions[id]
    -- Another key's session reads as no session: its ids are not told.
    if not s or s.key ~= from then return nil, "no such console session (it was closed: idle, or the link went)" end
    if args.close == true then
      close(id, "by its key")
      return true
    end
    if type(args.line) ~= "string" then return nil, "line must be a string" end
    if s.req then return nil, "a line of this session is still running" end
    touch(id)
    local shown = args.line:gsub("[%c]", " ")
    if #shown > M.LOGGED_CHARS then shown = shown:sub(1, M.LOGGED_CHARS) .. "..." end
    opts.log("info", ("console %s of %s: %s"):format(id, opts.who(from), shown))
    grant(s)
    local ok, v = s.state:eval(args.line, req and function(ok2, v2)
      s.req = nil
      if sessions[id] == s then touch(id) end
      if ok2 then req:reply(v2) else req:error(v2) end
    end)
    if ok == nil then
      s.req = req
      return req
    end
    if not ok then return nil, v end
    return v
  end

  -- key's link closed: its sessions end.
  function self.stop(key)
    local ids = {}
    for id, s in pairs(sessions) do
      if s.key == key then ids[#ids + 1] = id end
    end
    for _, id in ipairs(ids) do close(id, "the link went") end
  end

  function self.count() return count end

  return self
end

return M
