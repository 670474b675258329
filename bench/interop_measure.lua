-- Measurements against the real Elixir PeerNet library (not a test: it
-- counts and times, and asserts nothing). Run through scripts/measure-interop,
-- which builds, prepares the reference copy and sets the paths:
--   * first-call delivery out of N (INTEROP_N, default 100) for short-lived
--     `call`, `send` and run scripts (connect, then call at once);
--   * reconnect times both ways (INTEROP_RESTARTS runs each, default 5);
--   * duplicate connections in both key orders, whichever side dials second,
--     under a stream of 400 calls (INTEROP_DUPS runs each, default 3);
--   * the value table of spec/interop/rows.lua, each row's outcome.
-- The reference stops accepting after many quick closes (its supervisor
-- gives up, shared/reference/README.md); so that each short-lived link meets
-- a healthy reference, its instance is started afresh every 3 links (same
-- key, same port).
local src = os.getenv("PN_SOURCE_DIR") or "."
dofile(src .. "/spec/helper.lua")
local uv = require "luv"
local N = require "support.net"
local C = require "support.cli"
local E = require "support.elixir"
local I = require "support.interop"

local COUNT = tonumber(os.getenv("INTEROP_N") or "100")
local RESTARTS = tonumber(os.getenv("INTEROP_RESTARTS") or "5")
local DUPS = tonumber(os.getenv("INTEROP_DUPS") or "3")

local function say(fmt, ...) io.stdout:write(string.format(fmt, ...), "\n") io.stdout:flush() end
local function ms_since(t0) return (uv.hrtime() - t0) / 1e6 end
local function median(t)
  table.sort(t)
  return t[math.floor((#t + 1) / 2)] or 0
end

local node = E.start()
say("# peernet-host vs the reference PeerNet (Elixir %s), %s", node.version, os.date("!%Y-%m-%dT%H:%M:%SZ"))

-- ---- first-call delivery ----------------------------------------------------

local h = I.host()
local eport, exdir = E.free_port(), I.tmp() .. "/ex"
local ekey

local function fresh_reference()
  ekey = node:evalf('PNI.start(:n, %q, %d)', exdir, eport)
  node:eval("PNI.notes_start()")
  node:evalf([[
    :ok = PeerNet.pair(:n, %s)
    :ok = PeerNet.expose(:n, :echo, fn _from, args -> args end)
    :ok = PeerNet.expose(:n, :note, fn _from, args -> PNI.note(args) end)]], E.key(h.key))
end
fresh_reference()
I.trust(h, ekey, "--addr", "127.0.0.1:" .. eport)

local function tally(name, f)
  local counts, t0 = {}, uv.hrtime()
  for i = 1, COUNT do
    if i % 3 == 1 then fresh_reference() end
    local outcome = f(i)
    counts[outcome] = (counts[outcome] or 0) + 1
  end
  local parts = {}
  for k, v in pairs(counts) do parts[#parts + 1] = k .. " " .. v end
  table.sort(parts)
  say("%-34s %3d/%d delivered   (%s; %.1f s)", name, counts.delivered or 0, COUNT,
    table.concat(parts, ", "), ms_since(t0) / 1000)
end

say("\n## first-call delivery on fresh links (peernet-host dials)")
tally("short-lived call", function(i)
  local code = I.run(h, "call", ekey, "echo", tostring(i), "--timeout", "2000")
  return code == 0 and "delivered" or ("exit " .. code)
end)

tally("short-lived send", function(i)
  node:eval("PNI.notes_start()")
  local code = I.run(h, "send", ekey, "note", tostring(i))
  if code ~= 0 then return "exit " .. code end
  -- a lost send never arrives: the bound is only how long to look
  local got = node:evalf("PNI.wait(fn -> length(PNI.notes()) >= 1 end, 1_000); inspect(PNI.notes(), charlists: :as_lists)")
  return got == "[" .. i .. "]" and "delivered" or "lost"
end)

local script = I.tmp() .. "/first.lua"
H.write_file(script, [[
  local key = arg[1]
  assert(peernet.connect(key))
  local v, err = peernet.call(key, "echo", "first", { timeout = 2000 })
  local w, err2 = peernet.call(key, "echo", "second", { timeout = 2000 })
  print((v == "first" and "first=ok" or "first=" .. tostring(err)) .. " "
    .. (w == "second" and "second=ok" or "second=" .. tostring(err2)))
]])
local seconds = 0
tally("run script: connect, then call", function()
  local code, out = I.run(h, "run", script, ekey)
  if out:find("second=ok") then seconds = seconds + 1 end
  if code ~= 0 then return "exit " .. code end
  return out:find("^first=ok") and "delivered" or (out:match("^first=(%S+)") or "?")
end)
say("%-34s %3d/%d answered", "  (its second call)", seconds, COUNT)

-- ---- reconnect times ----------------------------------------------------------

say("\n## reconnect after a restart (from the restart to the link being back)")
do
  local times = {}
  local hh = I.host()
  local port = E.free_port()
  local k = I.elixir(node, "r", 0)
  I.trust(hh, k)
  local p = I.serve(hh, port)
  node:evalf("PeerNet.pair(:r, %s)", E.key(hh.key))
  node:evalf('PNI.announce(:r, "%s", %d)', hh.key, port)
  assert(I.wait_linked(node, "r", hh.key))
  for _ = 1, RESTARTS do
    I.stop(p)
    node:evalf('PNI.wait(fn -> not PNI.connected?(:r, "%s") end)', hh.key)
    local t0 = uv.hrtime()
    p = I.serve(hh, port)
    if I.wait_linked(node, "r", hh.key) then times[#times + 1] = ms_since(t0) end
  end
  I.stop(p)
  node:eval("PNI.stop(:r)")
  local txt = {}
  for i, t in ipairs(times) do txt[i] = string.format("%.0f", t) end
  say("serve restarts, the reference redials:  %d/%d back, median %.0f ms (%s ms)", #times, RESTARTS,
    median(times), table.concat(txt, ", "))
end
do
  local times = {}
  local hh, rport, rdir = I.host(), E.free_port(), I.tmp() .. "/r"
  local k = node:evalf('PNI.start(:r, %q, %d)', rdir, rport)
  node:evalf("PeerNet.pair(:r, %s)", E.key(hh.key))
  I.trust(hh, k, "--addr", "127.0.0.1:" .. rport)
  local p = I.serve(hh, E.free_port())
  C.expect(p, "connected " .. k)
  for i = 1, RESTARTS do
    node:eval("PNI.stop(:r)")
    N.wait(function() return select(2, p.out:gsub("\ndisconnected " .. k, "")) >= i end)
    local t0 = uv.hrtime()
    node:evalf('PNI.start(:r, %q, %d)', rdir, rport)
    if N.wait(function() return I.connects(p, k) >= i + 1 end, 60000) then times[#times + 1] = ms_since(t0) end
  end
  I.stop(p)
  node:eval("PNI.stop(:r)")
  local txt = {}
  for i, t in ipairs(times) do txt[i] = string.format("%.0f", t) end
  say("the reference restarts, serve redials:  %d/%d back, median %.0f ms (%s ms)", #times, RESTARTS,
    median(times), table.concat(txt, ", "))
end

-- ---- duplicate connections -----------------------------------------------------

say("\n## duplicate connections, 400 calls from the reference during each")
local host_peer = I.host_peer

local function dup(order, second)
  local port = E.free_port()
  local k = I.elixir(node, "d", port)
  local hh = I.host_ordered(order, k)
  node:evalf("PeerNet.pair(:d, %s)", E.key(hh.key))
  I.trust(hh, k, "--addr", "127.0.0.1:" .. port)
  local trigger
  local p
  if second == "reference" then
    p = I.serve(hh, E.free_port())
    C.expect(p, "connected " .. k)
    node:evalf('PNI.wait(fn -> PNI.connected?(:d, "%s") end)', hh.key)
    trigger = string.format("PeerNet.connect(:d, %s, {127, 0, 0, 1}, %d)", E.key(hh.key), hh.port)
  else
    node:eval(':sys.suspend(:"d.acceptor")')
    p = I.serve(hh, E.free_port())
    N.wait(function() local x = host_peer(hh, k) return x and x.status == "connecting" end)
    node:evalf('PNI.announce(:d, "%s", %d)', hh.key, hh.port)
    C.expect(p, "connected " .. k)
    node:evalf('PNI.wait(fn -> PNI.connected?(:d, "%s") end)', hh.key)
    trigger = ':sys.resume(:"d.acceptor")'
  end
  local got = node:evalf('PNI.stream(:d, "%s", :echo, 400, 50, fn -> %s end)', hh.key, trigger)
  local t0 = uv.hrtime()
  local settled = N.wait(function()
    local x = host_peer(hh, k)
    return x and x.status == "connected" and x.connections == 1
      and node:evalf('PNI.connected?(:d, "%s")', hh.key) == "true"
  end, 15000)
  I.stop(p)
  node:eval("PNI.stop(:d)")
  return got, settled and string.format("one link %.0f ms after the stream", ms_since(t0)) or "not settled in 15 s"
end

for _, second in ipairs { "reference", "host" } do
  for _, order in ipairs { "lower", "higher" } do
    for run = 1, DUPS do
      local got, settled = dup(order, second)
      say("%-9s dials second, host key %-6s run %d: %s; %s", second, order, run, got, settled)
    end
  end
end

-- ---- the value table ------------------------------------------------------------

say("\n## value table: Elixir -> Lua echo -> Elixir, compared exactly")
do
  local hh = I.host()
  local k = I.elixir(node, "v", 0)
  I.trust(hh, k)
  local p = I.serve(hh, E.free_port())
  node:evalf("PeerNet.pair(:v, %s)", E.key(hh.key))
  node:evalf('PNI.announce(:v, "%s", %d)', hh.key, hh.port)
  local ok_rows = 0
  for _, row in ipairs(require("interop.rows").rows) do
    node:evalf('PNI.wait(fn -> PNI.connected?(:v, "%s") end)', hh.key)
    local before = node:evalf('inspect(PNI.conn_pid(:v, "%s"))', hh.key)
    local got = I.roundtrip(node, "v", hh.key, row[2], row[3])
    node:evalf('PNI.wait(fn -> PNI.connected?(:v, "%s") end)', hh.key)
    local after = node:evalf('inspect(PNI.conn_pid(:v, "%s"))', hh.key)
    local expect = row[3] and ("maps to " .. row[3]) or "equal"
    local outcome = got == "equal" and "ok" or ("FAIL: " .. got)
    if got == "equal" and before ~= after then outcome = "FAIL: link changed" end
    if outcome == "ok" then ok_rows = ok_rows + 1 end
    say("%-52s %-28s %s", row[1], expect, outcome)
  end
  say("%d of %d rows as docs/values.md says", ok_rows, #require("interop.rows").rows)
  I.stop(p)
end

node:close()
I.cleanup()
