-- The hosts a command starts with the data dir's identity: a resident one
-- (serve, run) that follows the trust list and answers on the control
-- socket, and a short-lived one (call, send, peers with no host running).
local peernet = require "peernet"
local control = require "peernet.control"
local datadir = require "peernet.cli.datadir"

local M = {}

-- opts: peernet.host.new's options but the secret. busy_hint ends the
-- message when a host already runs on the data dir. Returns the host or
-- nil, message.
function M.resident(p, opts, busy_hint)
  local kp, e = datadir.load_identity(p)
  if not kp then return nil, e end
  local fits, fe = datadir.control_fits(p)
  if not fits then return nil, fe end
  if control.probe(p.control) == "alive" then
    return nil, "a host is already running on " .. p.dir .. (busy_hint or "")
  end
  opts.secret = kp:secret()
  local h, he = peernet.host.new(opts)
  if not h then return nil, "cannot start the host: " .. tostring(he) end
  local tok, tfe = h:trust_file(p.trust)
  if not tok then
    h:close()
    return nil, "trust list: " .. tostring(tfe)
  end
  return h
end

-- A host that does not listen, for one command.
function M.short_lived(p)
  local kp, e = datadir.load_identity(p)
  if not kp then return nil, e end
  local h, he = peernet.host.new { secret = kp:secret(), listen = false }
  if not h then return nil, tostring(he) end
  return h
end

return M
