-- peers and status: what the host of the data dir knows, or, when none
-- runs, what a short probe finds.
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

local STATUS_TIMEOUT_MS = 3000

local function seen_text(peer, now)
  if not peer.last_seen or peer.last_seen <= 0 then return "-" end
  return ("%ds ago"):format(math.max(0, now - peer.last_seen))
end

-- The trusted peers, then the keys heard on the LAN that are not trusted
-- (Syncthing's "wants to connect"), each with its fingerprint and address
-- and the command that trusts it.
local function print_peers(o, list, running)
  if o.json then
    local shaped = {}
    for i, peer in ipairs(list) do shaped[i] = format.shaped("peer", peer) end
    out(format.json { running = running, peers = shaped })
    return EXIT.ok
  end
  local now = os.time()
  local trusted, strangers = {}, {}
  for _, peer in ipairs(list) do
    if peer.trusted then
      trusted[#trusted + 1] = { peer.key, peer.label or "-", peer.status, peer.addr or "-", seen_text(peer, now) }
    else
      strangers[#strangers + 1] = { peer.fingerprint, peer.key, peer.addr or "-", seen_text(peer, now) }
    end
  end
  if #trusted == 0 and #strangers == 0 then
    out("(no peers: peernet-host trust add KEY --addr HOST:PORT)")
    return EXIT.ok
  end
  if #trusted > 0 then out(format.columns({ "KEY", "LABEL", "STATUS", "ADDR", "LAST SEEN" }, trusted)) end
  if #strangers > 0 then
    if #trusted > 0 then out("") end
    out("discovered, not trusted (peernet-host trust add KEY --label NAME):")
    out(format.columns({ "FINGERPRINT", "KEY", "ADDR", "LAST SEEN" }, strangers))
  end
  if not running then out("(no host runs on this data dir: probed for this command only)") end
  return EXIT.ok
end

-- No host runs: dial every trusted peer that has an address, wait for the
-- handshakes (each connect answers within timeout, success or not), report.
local function probe(p, timeout)
  local h, he = hosts.short_lived(p)
  if not h then return nil, EXIT.failure, he end
  local store, se = datadir.open_trust(p)
  if not store then h:close() return nil, EXIT.failure, se end
  local pending, resume = 0, nil
  for _, en in ipairs(store:list()) do
    h:trust(en.key)
    if en.addr then
      pending = pending + 1
      ops.connect(h, en.key, en.addr, timeout, function()
        pending = pending - 1
        if pending == 0 and resume then resume() end
      end)
    end
  end
  task.await(function(k)
    if pending == 0 then return k() end
    resume = k
  end)
  local list = ops.peer_list(h, p)
  h:close()
  return { ok = true, peers = list, running = false }
end

M.peers = {
  run = function(o, p)
    if #o.pos > 0 then return fail("usage", "peers takes no arguments") end
    local timeout, te = options.ms(o, "timeout", help.default("peers", "timeout"))
    if not timeout then return fail("usage", te) end
    local answer, code = reach.run(function()
      return reach.perform(p, { op = "peers", timeout = timeout }, function()
        reach.waiting("connecting to the trusted peers that have an address")
        return probe(p, timeout)
      end, "the peer list")
    end)
    if not answer then return code end
    if not answer.ok then return fail(reach.ANSWER_EXIT[answer.kind] or EXIT.failure, tostring(answer.message)) end
    return print_peers(o, answer.peers, answer.running ~= false)
  end,
}

-- No host runs: what this data dir would serve.
local function idle_status(p)
  local kp, e = datadir.load_identity(p)
  if not kp then return nil, EXIT.failure, e end
  local store = datadir.open_trust(p)
  return { ok = true, status = { running = false, key = kp:public_hex(), data_dir = p.dir,
    trusted = store and #store:list() or 0 } }
end

local function print_status(o, s, p)
  if o.json then
    if s.trusted == nil then
      local store = datadir.open_trust(p)
      s.trusted = store and #store:list() or nil
    end
    out(format.json(format.shaped("status", s)))
    return EXIT.ok
  end
  out("key:      " .. s.key)
  out("data dir: " .. s.data_dir)
  if not s.running then
    out("host:     not running")
    out("trusted:  " .. s.trusted .. " peer(s)")
    return EXIT.ok
  end
  out(("host:     running (pid %d, %s, up %ds)"):format(s.pid, s.mode, s.uptime))
  out("listen:   " .. (s.listen or "-"))
  out(("peers:    %d connected of %d known"):format(s.connected, s.known))
  if s.scripts then
    for _, sc in ipairs(s.scripts) do
      out(("script:   %s %s"):format(sc.file, sc.ok and "ok" or ("FAILED " .. tostring(sc.err))))
    end
  end
  return EXIT.ok
end

M.status = {
  run = function(o, p)
    if #o.pos > 0 then return fail("usage", "status takes no arguments") end
    local answer, code = reach.run(function()
      return reach.perform(p, { op = "status", timeout = STATUS_TIMEOUT_MS }, function() return idle_status(p) end)
    end)
    if not answer then return code end
    if not answer.ok then return fail(reach.ANSWER_EXIT[answer.kind] or EXIT.failure, tostring(answer.message)) end
    return print_status(o, answer.status, p)
  end,
}

return M
