-- bench: a load generator against one handler of a peer (docs/cli.md
-- "bench"). A host of its own with the data dir's identity dials the peer;
-- the calls are made in C (peernet.loadgen) so the caller is not what
-- limits the figure.
local peernet = require "peernet"
local control = require "peernet.control"
local format = require "peernet.format"
local help = require "peernet.cli.help"
local datadir = require "peernet.cli.datadir"
local hosts = require "peernet.cli.hosts"
local ops = require "peernet.cli.ops"
local options = require "peernet.cli.options"
local output = require "peernet.cli.output"
local reach = require "peernet.cli.reach"
local task = require "peernet.cli.task"

local EXIT, out, fail = output.EXIT, output.out, output.fail

local M = {}

local DEFAULT_INFLIGHT, DEFAULT_DURATION_S = help.default("bench", "inflight"), help.default("bench", "duration")
local MAX_DURATION_S = 86400
local MAX_SIZE = 16 * 1024 * 1024 -- the frame cap's ceiling: a bigger body could never go

-- o[name] as an integer in lo..hi (default when absent), or nil, message.
local function int_opt(o, name, default, lo, hi)
  if o[name] == nil then return default end
  local n = math.tointeger(tonumber(o[name]))
  if not n or n < lo or n > hi then
    return nil, ("--%s must be a whole number in %d..%d"):format(name, lo, hi)
  end
  return n
end

local function parse(o)
  local n = #o.pos
  if n < 2 or n > 3 then return nil, "usage: peernet-host bench PEER HANDLE [ARGS] (peernet-host bench --help)" end
  local inflight, ie = int_opt(o, "inflight", DEFAULT_INFLIGHT, 1, 65536)
  if not inflight then return nil, ie end
  local secs, de = int_opt(o, "duration", DEFAULT_DURATION_S, 1, MAX_DURATION_S)
  if not secs then return nil, de end
  local size, se = int_opt(o, "size", nil, 0, MAX_SIZE)
  if se then return nil, se end
  local timeout, te = options.ms(o, "timeout", reach.DEFAULT_TIMEOUT_MS)
  if not timeout then return nil, te end
  if size and o.pos[3] then return nil, "give ARGS or --size, not both" end
  local args, ae
  if size then
    args = peernet.etf.encode(string.rep("x", size))
  else
    args, ae = peernet.args.encode(o.pos[3] or "nil")
    if not args then return nil, ae end
  end
  return { inflight = inflight, duration_ms = secs * 1000, timeout_ms = timeout, args = args,
    send = o.send and true or false, handle = o.pos[2] }
end

local function us(v) return v and ("%.1f us"):format(v) or "-" end

local function print_report(o, r, req)
  local what = req.send and "sends" or "calls"
  if o.json then
    out(format.json {
      mode = what, inflight = req.inflight, ok = r.ok, errors = r.errors, timeouts = r.timeouts,
      closed = r.closed, seconds = r.seconds, per_s = r.per_s, p50_us = r.p50_us,
      p99_us = r.p99_us, p999_us = r.p999_us, min_us = r.min_us, max_us = r.max_us,
      mean_us = r.mean_us, error = r.error,
    })
    return
  end
  out(("%s/s: %.0f (%d in %.2f s, %s)"):format(what, r.per_s, r.ok + r.errors, r.seconds,
    req.send and "taken by the socket" or (req.inflight .. " in flight")))
  if not req.send then
    out(("latency: p50 %s  p99 %s  p99.9 %s  (min %s, max %s, mean %s)"):format(us(r.p50_us),
      us(r.p99_us), us(r.p999_us), us(r.min_us), us(r.max_us), us(r.mean_us)))
    out(("answers: %d ok, %d error, %d timed out, %d closed"):format(r.ok, r.errors, r.timeouts,
      r.closed))
  end
end

local function run(o, p)
  local req, pe = parse(o)
  if not req then return fail("usage", pe) end
  local entry, ee = datadir.resolve_peer(p, o.pos[1])
  if not entry then return fail("unreachable", ee) end
  -- Two hosts with one key would take each other's link to the peer.
  if control.probe(p.control) == "alive" then
    return fail("failure", "a host is running on " .. p.dir .. ": bench needs a data dir of its"
      .. " own (an identity the peer trusts) so that the running host keeps its link")
  end
  local addr = o.addr or entry.addr
  if not addr then
    return fail("unreachable", "no address for " .. o.pos[1]
      .. ": give --addr HOST:PORT or store one with `trust add KEY --addr`")
  end
  local ok, r, code, msg = task.run(function()
    local h, he = hosts.short_lived(p)
    if not h then return nil, EXIT.failure, he end
    h:trust(entry.key)
    local cok, kind, cmsg = task.await(function(k) ops.connect(h, entry.key, addr, req.timeout_ms, k) end)
    if not cok then
      h:close()
      return nil, reach.ANSWER_EXIT[kind] or EXIT.failure, cmsg
    end
    req.peer = entry.key
    local rep = task.await(function(k)
      local started, se = peernet.loadgen(h, req, k)
      if not started then k({ error = se }) end
    end)
    h:close()
    return rep
  end)
  if not ok then return fail("failure", r) end
  if not r then return fail(code, msg) end
  if r.ok == nil then return fail("failure", r.error) end
  print_report(o, r, req)
  if r.error then return fail("unreachable", "bench stopped early: " .. r.error) end
  if r.ok + r.errors == 0 then return fail("timeout", "no call was answered") end
  return EXIT.ok
end

M.bench = {
  run = run,
}

return M
