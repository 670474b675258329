-- How call, send, peers and status reach a host: the control socket of the
-- host running on the data dir (serve or run), else a short-lived host of
-- their own; and how they turn its answer into output and an exit code.
local uv = require "luv"
local peernet = require "peernet"
local control = require "peernet.control"
local format = require "peernet.format"
local datadir = require "peernet.cli.datadir"
local help = require "peernet.cli.help"
local output = require "peernet.cli.output"
local task = require "peernet.cli.task"

local EXIT, out, fail = output.EXIT, output.out, output.fail
local K = peernet.kinds

local M = {}

M.DEFAULT_TIMEOUT_MS = help.default("call", "timeout")
-- The control exchange may take this much longer than the request's own timeout.
local CONTROL_SLACK_MS = 2000

-- The exit code of an answer's failure kind.
M.ANSWER_EXIT = { [K.remote] = EXIT.remote, [K.timeout] = EXIT.timeout, unreachable = EXIT.unreachable,
  [K.closed] = EXIT.unreachable, bad_request = EXIT.usage }

-- The kind --json prints for an answer's kind: a call's result kinds in
-- the runtime (core/reason.h PN_KINDS): remote, timeout, closed, local.
local JSON_KIND = { [K.remote] = K.remote, [K.timeout] = K.timeout, [K.closed] = K.closed }

-- On a terminal, a wait says what it waits for on stderr, and the line is
-- wiped when the answer comes; on a pipe or a file nothing is written.
local waiting_shown = false
function M.waiting(text)
  if uv.guess_handle(2) ~= "tty" then return end
  io.stderr:write("\r\27[K", text, "\226\128\166")
  io.stderr:flush()
  waiting_shown = true
end

function M.waited()
  if not waiting_shown then return end
  waiting_shown = false
  io.stderr:write("\r\27[K")
  io.stderr:flush()
end

-- Inside a task: runs req against the host of this data dir (control
-- socket) or, when none runs, short_lived(); returns the answer map, or
-- nil, exit_code, message.
-- what: the peer as the user named it, for the waiting line.
function M.perform(p, req, short_lived, what)
  -- No host can serve a path too long for a unix socket (serve refuses
  -- it): connecting to it would reach whatever sits at the cut-short path.
  if not datadir.control_fits(p) then return short_lived() end
  if what and uv.fs_stat(p.control) then M.waiting(("waiting for %s through the host running on %s"):format(what, p.dir)) end
  local answer, e, kind = task.await(function(k)
    control.request(p.control, req, (req.timeout or M.DEFAULT_TIMEOUT_MS) + CONTROL_SLACK_MS, k)
  end)
  if answer then return answer end
  M.waited()
  if kind ~= "no_host" then return nil, EXIT.failure, "control socket: " .. tostring(e) end
  return short_lived()
end

-- Prints a call's answer (the reply, or why there is none); returns the
-- exit code. --json: {"ok": true, "value": V} or {"ok": false, "error":
-- Reason or message, "kind": ...}, so a reply {error = ...} and an error
-- reply differ in the JSON itself.
function M.print_answer(o, answer)
  if answer.ok then
    local v, de = peernet.etf.decode(answer.value, { exact = true })
    if v == nil and de then return fail("failure", K.undecodable .. " reply: " .. de) end
    if o.json then
      out(format.json { ok = true, value = v == nil and peernet.null or v })
    else
      out(format.pretty(v))
    end
    return EXIT.ok
  end
  if answer.kind == K.remote then
    local r, re = peernet.etf.decode(answer.reason, { exact = true })
    -- A reason this side cannot map (an Elixir exit reason with a pid in
    -- it): still the peer's {error, _}, so exit 3, with why it is not shown.
    if r == nil and re then r = "(" .. K.undecodable .. " reason: " .. re .. ")" end
    return fail("remote", "error: " .. (re and r or format.pretty(r)),
      { error = r == nil and peernet.null or r, kind = K.remote })
  end
  return fail(M.ANSWER_EXIT[answer.kind] or EXIT.failure, tostring(answer.message),
    { kind = JSON_KIND[answer.kind] or "local" })
end

-- Runs fn (which returns what perform returns) as a task; returns the
-- answer map, or nil and the exit code after printing why.
function M.run(fn)
  local ok, answer, code, msg = task.run(fn)
  M.waited()
  if not ok then return nil, fail("failure", answer) end
  if not answer then return nil, fail(code, msg) end
  return answer
end

return M
