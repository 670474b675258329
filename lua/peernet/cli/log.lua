-- The log of serve and run: one stream of lines with levels (debug, info,
-- warn, error) from the host, the script runtime (scripts' print and
-- peernet.log.*) and the command itself.
--
-- Text goes to stderr as `peernet [LEVEL] message`, after a UTC timestamp
-- unless stderr is the systemd journal (which stamps every line itself:
-- JOURNAL_STREAM holds the device and inode of the stream it connected,
-- systemd.exec(5)). Under --json each line is an event on stdout instead:
-- {"event":"log","level":"info","message":"..."}.
local uv = require "luv"
local format = require "peernet.format"
local output = require "peernet.cli.output"

local M = {}

M.LEVELS = { "debug", "info", "warn", "error" }
M.DEFAULT = "info"

local rank = {}
for i, name in ipairs(M.LEVELS) do rank[name] = i end

function M.is_level(name) return rank[name] ~= nil end

-- "debug|info|warn|error", for messages and help.
function M.choices() return table.concat(M.LEVELS, "|") end

-- True when stderr is the stream systemd connected to the journal.
function M.under_journal(env)
  local js = env == nil and os.getenv("JOURNAL_STREAM") or env
  if not js then return false end
  local dev, ino = js:match("^(%d+):(%d+)$")
  local st = dev and uv.fs_fstat(2)
  return st ~= nil and tostring(st.dev) == dev and tostring(st.ino) == ino
end

-- msg with its control characters written \xNN: a message may hold a
-- peer's text (a pushed file's name, a stranger's address), which must
-- stay one line on the terminal, the journal and a follower's screen. The
-- host's and the scripts' own lines are escaped in C already (core/logline.c)
-- and come through unchanged: an escaped line holds no control character.
function M.clean(msg)
  return (tostring(msg):gsub("[%z\1-\31\127]", function(c) return ("\\x%02x"):format(c:byte()) end))
end

-- A logger: log(level, message) writes the line when level is at least
-- opts.level. opts.json: lines are JSON events on stdout.
function M.new(opts)
  local min = rank[opts.level or M.DEFAULT] or rank[M.DEFAULT]
  local stamp = not M.under_journal()
  local self = {}
  function self.set_level(name) min = rank[name] or min end
  function self.enabled(level) return (rank[level] or 2) >= min end
  function self.log(level, msg)
    if (rank[level] or 2) < min then return end
    msg = M.clean(msg)
    if opts.json then
      output.out(format.json { event = "log", level = level, message = msg })
      return
    end
    local prefix = stamp and os.date("!%Y-%m-%dT%H:%M:%SZ ") or ""
    io.stderr:write(prefix, "peernet [", level, "] ", msg, "\n")
  end
  return self
end

return M
