-- How call, send, peers and status reach a host: the control socket of the
-- host running on the data dir (serve or run), else a short-lived host of
-- their own; and how they turn its answer into output and an exit code.
local peernet = require "peernet"
local control = require "peernet.control"
local format = require "peernet.format"
local output = require "peernet.cli.output"
local task = require "peernet.cli.task"

local EXIT, out, fail = output.EXIT, output.out, output.fail
local K = peernet.kinds

local M = {}

M.DEFAULT_TIMEOUT_MS = 5000
-- The control exchange may take this much longer than the request's own timeout.
local CONTROL_SLACK_MS = 2000

-- The exit code of an answer's failure kind.
M.ANSWER_EXIT = { [K.remote] = EXIT.remote, [K.timeout] = EXIT.timeout, unreachable = EXIT.unreachable,
  bad_request = EXIT.usage }

-- Inside a task: runs req against the host of this data dir (control
-- socket) or, when none runs, short_lived(); returns the answer map, or
-- nil, exit_code, message.
function M.perform(p, req, short_lived)
  local answer, e, kind = task.await(function(k)
    control.request(p.control, req, (req.timeout or M.DEFAULT_TIMEOUT_MS) + CONTROL_SLACK_MS, k)
  end)
  if answer then return answer end
  if kind ~= "no_host" then return nil, EXIT.failure, "control socket: " .. tostring(e) end
  return short_lived()
end

-- Prints a call's answer (the reply, or why there is none); returns the exit code.
function M.print_answer(o, answer)
  if answer.ok then
    local v, de = peernet.etf.decode(answer.value, { exact = true })
    if v == nil and de then return fail("failure", K.undecodable .. " reply: " .. de) end
    if o.json then out(format.json(v)) else out(format.pretty(v)) end
    return EXIT.ok
  end
  if answer.kind == K.remote then
    local r, re = peernet.etf.decode(answer.reason, { exact = true })
    -- A reason this side cannot map (an Elixir exit reason with a pid in
    -- it): still the peer's {error, _}, so exit 3, with why it is not shown.
    if r == nil and re then r = "(" .. K.undecodable .. " reason: " .. re .. ")" end
    if o.json then out(format.json { error = r, kind = K.remote }) end
    return fail("remote", "error: " .. (re and r or format.pretty(r)))
  end
  if o.json then out(format.json { error = answer.message, kind = answer.kind }) end
  return fail(M.ANSWER_EXIT[answer.kind] or EXIT.failure, tostring(answer.message))
end

-- Runs fn (which returns what perform returns) as a task; returns the
-- answer map, or nil and the exit code after printing why.
function M.run(fn)
  local ok, answer, code, msg = task.run(fn)
  if not ok then return nil, fail("failure", answer) end
  if not answer then return nil, fail(code, msg) end
  return answer
end

return M
