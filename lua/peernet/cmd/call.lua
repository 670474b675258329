-- call and send: one request to a handler of a peer, through the host
-- running on the data dir or a short-lived one.
local peernet = require "peernet"
local format = require "peernet.format"
local datadir = require "peernet.cli.datadir"
local help = require "peernet.cli.help"
local hosts = require "peernet.cli.hosts"
local ops = require "peernet.cli.ops"
local options = require "peernet.cli.options"
local output = require "peernet.cli.output"
local reach = require "peernet.cli.reach"
local task = require "peernet.cli.task"

local EXIT, out, fail = output.EXIT, output.out, output.fail

local M = {}

-- No host runs on the data dir: a short-lived one dials the peer at
-- --addr or its trust list address.
local function short_lived(p, req, entry, peer_name)
  local h, he = hosts.short_lived(p)
  if not h then return nil, EXIT.failure, he end
  h:trust(entry.key)
  if not req.addr and not entry.addr then
    h:close()
    return nil, EXIT.unreachable, "no address for " .. peer_name
      .. ": give --addr HOST:PORT or store one with `trust add KEY --addr`"
  end
  req.addr = req.addr or entry.addr
  reach.waiting(("connecting to %s (%s)"):format(peer_name, req.addr))
  local a = task.await(function(k) ops[req.op](h, req, k, { flush = true }) end)
  h:close()
  return a
end

local function call_or_send(op)
  return function(o, p)
    local n = #o.pos
    if n < 2 or n > 3 then
      return fail("usage", ("usage: peernet-host %s (peernet-host %s --help)"):format(help.find(op).usage, op))
    end
    local timeout, te = options.ms(o, "timeout", help.default(op, "timeout"))
    if not timeout then return fail("usage", te) end
    local args, ae = peernet.args.encode(o.pos[3] or "nil")
    if not args then return fail("usage", ae) end
    local entry, pe, pcode = datadir.resolve_peer(p, o.pos[1])
    if not entry then return fail(pcode or "unreachable", pe) end
    local req = { op = op, peer = entry.key, handle = o.pos[2], args = args, timeout = timeout,
      addr = o.addr }
    local answer, code = reach.run(function()
      return reach.perform(p, req, function() return short_lived(p, req, entry, o.pos[1]) end, o.pos[1])
    end)
    if not answer then return code end
    if op == "send" and answer.ok then
      if o.json then out(format.json { ok = true }) end
      return EXIT.ok
    end
    return reach.print_answer(o, answer)
  end
end

M.call = { run = call_or_send("call") }

M.send = { run = call_or_send("send") }

return M
