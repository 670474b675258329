-- The device's side of `peernet-host logs` (docs/remote.md): the last
-- BACKLOG lines of serve's log, and the keys following it. A follower
-- calls the reserved handle peernet.logs; the answer holds the backlog,
-- and with follow = true each later line is sent (a send, never queued
-- for an offline peer) to the follower's reserved handle peernet.log
-- while its link stays up. Each follower gets at most RATE lines a
-- second (BURST at once); the rest are counted and the next line sent is
-- preceded by {dropped = N}.
local uv = require "luv"
local log = require "peernet.cli.log"

local M = {}

M.HANDLE = "peernet.logs"    -- the device's: backlog and following
M.LINE_HANDLE = "peernet.log" -- the follower's: one line per send
M.BACKLOG = 100              -- lines kept for a new follower
M.RATE = 50                  -- lines a second to one follower
M.BURST = 100                -- lines at once to one follower
M.FOLLOWERS_MAX = 8          -- keys following at once
M.LINE_MAX = 2048            -- bytes of one line sent (longer: cut)

local rank = {}
for i, name in ipairs(log.LEVELS) do rank[name] = i end

-- h: the host (h:send); allowed(key): does key still hold the logs right;
-- now: the clock in ms (uv.now; a spec gives its own).
function M.new(h, allowed, now)
  now = now or uv.now
  local self = { followers = {}, n = 0 }
  local ring, first, count = {}, 1, 0
  local busy = false -- a line logged while sending one (a send failing logs) is not fed back
  local function send_to(key, f, line)
    local t = now()
    f.tokens = math.min(M.BURST, f.tokens + (t - f.at) * M.RATE / 1000)
    f.at = t
    if f.tokens < 1 then
      f.dropped = f.dropped + 1
      return
    end
    if f.dropped > 0 then
      if not h:send(key, M.LINE_HANDLE, { dropped = f.dropped }) then
        f.dropped = f.dropped + 1 -- busy: the follower reads slowly; the marker waits too
        return
      end
      f.dropped = 0
    end
    f.tokens = f.tokens - 1
    -- A follower that reads slowly is told busy: the line is counted in
    -- the next marker instead of vanishing.
    if not h:send(key, M.LINE_HANDLE, line) then f.dropped = f.dropped + 1 end
  end
  function self.push(level, message)
    if busy then return end
    busy = true
    local line = { level = level, message = #message > M.LINE_MAX and message:sub(1, M.LINE_MAX) or message,
      time = os.date("!%Y-%m-%dT%H:%M:%SZ") }
    if count < M.BACKLOG then
      count = count + 1
      ring[(first + count - 2) % M.BACKLOG + 1] = line
    else
      ring[first] = line
      first = first % M.BACKLOG + 1
    end
    for key, f in pairs(self.followers) do
      if not allowed(key) then
        self.stop(key)
      elseif (rank[level] or 2) >= f.level then
        send_to(key, f, line)
      end
    end
    busy = false
  end
  -- The backlog at level or above, oldest first.
  function self.backlog(level)
    local out = {}
    for i = 0, count - 1 do
      local l = ring[(first + i - 1) % M.BACKLOG + 1]
      if (rank[l.level] or 2) >= rank[level] then out[#out + 1] = l end
    end
    return out
  end
  -- Starts sending to key; nil, why when FOLLOWERS_MAX keys follow already.
  function self.follow(key, level)
    if not self.followers[key] then
      if self.n >= M.FOLLOWERS_MAX then return nil, ("%d keys follow the log already"):format(M.FOLLOWERS_MAX) end
      self.n = self.n + 1
    end
    -- Following again changes the level only: the bucket is the key's, so
    -- re-following cannot refill it.
    local f = self.followers[key]
    if f then
      f.level = rank[level]
    else
      self.followers[key] = { level = rank[level], tokens = M.BURST, at = now(), dropped = 0 }
    end
    return true
  end
  function self.stop(key)
    if self.followers[key] then
      self.followers[key] = nil
      self.n = self.n - 1
    end
  end
  return self
end

return M
