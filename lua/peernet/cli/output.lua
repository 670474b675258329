-- How a command reports: lines on stdout, errors on stderr, and the exit
-- code (also in `peernet-host --help` and docs/cli.md).
--
-- Failures are values: a command returns an exit code, and the only place
-- that prints an error and picks the code is fail(). Nothing calls os.exit:
-- src/main.c must get the chance to close the loop cleanly.
local peernet = require "peernet"
local format = require "peernet.format"

local M = {}

M.EXIT = {
  ok = 0,
  failure = 1,      -- bad data dir, missing identity, I/O, a script that fails
  usage = 2,        -- unknown command or option, bad ARGS, bad key
  remote = 3,       -- the peer answered {error, Reason}
  timeout = 4,      -- no answer (or no connection) within --timeout
  unreachable = 5,  -- peer unknown, untrusted, not reachable, or the link closed
}
local EXIT = M.EXIT

-- Under --json a failure is also one object on stdout, {"ok": false,
-- "error": ..., "kind": ...}, so a program reading stdout never has to
-- parse stderr. kind is a call's (remote, timeout, closed) or "local":
-- refused here (usage, ARGS, an unknown peer, a file). One per run.
local json_mode, json_failed

-- The first failed write to stdout (a reader that hung up: EPIPE, as
-- SIGPIPE is ignored). finish() turns it into exit 1 with a message; serve
-- keeps serving when its log reader goes away.
local stdout_error

-- Each line is flushed by hand: stdout is fully buffered because a line
-- buffered stream hides a failed flush from Lua (fwrite still says yes).
function M.out(...)
  local ok, e = io.stdout:write(...)
  if ok then ok, e = io.stdout:write("\n") end
  if ok then ok, e = io.stdout:flush() end
  if not ok and not stdout_error then stdout_error = tostring(e) end
end

function M.err(...)
  io.stderr:write("peernet-host: ", ...)
  io.stderr:write("\n")
end

-- From the command line: --json was given (before `--`).
function M.set_json(on) json_mode = on end

-- The JSON object of a failure: fields.error (a value: the peer's reason)
-- else msg, and fields.kind else "local".
function M.fail_json(msg, fields)
  if not json_mode or json_failed then return end
  json_failed = true
  fields = fields or {}
  local e = fields.error
  if e == nil then e = msg end
  M.out(format.json { ok = false, error = e == nil and peernet.null or e, kind = fields.kind or "local" })
end

-- Prints msg as an error (and, under --json, the failure object on
-- stdout); returns the exit code named code (or code itself).
function M.fail(code, msg, fields)
  M.fail_json(msg, fields)
  M.err(msg)
  return EXIT[code] or code
end

-- --json prints value as JSON, else text.
function M.json_or(o, value, text)
  if o.json then M.out(format.json(value)) else M.out(text) end
end

-- Around one command: start() before it, finish(code) after it returns
-- the code to exit with (exit 1 when stdout could not be written).
function M.start()
  io.stdout:setvbuf("full")
  stdout_error = nil
  json_mode, json_failed = false, false
end

function M.finish(code)
  local ok, e = io.stdout:flush()
  if not ok and not stdout_error then stdout_error = tostring(e) end
  if stdout_error then
    M.err("cannot write to standard output: " .. stdout_error)
    if code == EXIT.ok then code = EXIT.failure end
  end
  return code
end

return M
