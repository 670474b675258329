-- Shared set-up of the interop specs: peernet-host data dirs and `serve`
-- processes (support.cli) paired with PeerNet instances on the Elixir node
-- (support.elixir).
local peernet = require "peernet"
local uv = require "luv"
local N = require "support.net"
local C = require "support.cli"
local E = require "support.elixir"

local I = {}

I.handlers = H.source_dir .. "/spec/interop/handlers"

local dirs = {}

-- A fresh temp dir (removed by I.cleanup).
function I.tmp()
  local d = H.tmpdir()
  dirs[#dirs + 1] = d
  return d
end

-- A peernet-host identity: { dir = data dir, key = hex }.
function I.host()
  local dir, key = C.init(I.tmp() .. "/data")
  return { dir = dir, key = key }
end

-- A host identity whose key sorts below (want "lower") or above ("higher")
-- other_hex, as the duplicate-connection rules compare them.
-- The key is drawn in-process and saved over the one init made: a key
-- near either end (fffb...) leaves about one draw in 4,000 on the wanted
-- side, too many for one init each.
function I.host_ordered(want, other_hex)
  local h = I.host()
  for _ = 1, 1000000 do
    local kp = peernet.keys.generate()
    local hex = kp:public_hex()
    if hex ~= other_hex and (hex < other_hex) == (want == "lower") then
      assert(kp:save(h.dir .. "/identity.keys"))
      h.key = hex
      return h
    end
  end
  error("no key " .. want .. " than " .. other_hex .. " in 1,000,000 draws")
end

function I.cli(h, ...)
  local args = { "--data-dir", h.dir }
  for _, a in ipairs { ... } do args[#args + 1] = a end
  return args
end

function I.run(h, ...) return C.run(I.cli(h, ...)) end

function I.trust(h, key, ...)
  local code, _, err = I.run(h, "trust", "add", key, ...)
  assert(code == 0, err)
end

-- `serve` on 127.0.0.1:port with the interop handler scripts; waits until it
-- serves and, with want_handles, until the scripts are loaded.
function I.serve(h, port, extra, env)
  local args = I.cli(h, "serve", "--listen", "127.0.0.1:" .. port, "--no-discovery",
    "--handlers", I.handlers)
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  local p = C.spawn(args, { env = env })
  C.expect(p, "serving ")
  C.expect(p, "interop%.lua")
  h.serve, h.port = p, port
  return p
end

-- How many times serve has printed `connected KEY` so far.
function I.connects(p, key)
  local n = 0
  for _ in p.out:gmatch("\nconnected " .. key) do n = n + 1 end
  if p.out:find("^connected " .. key) then n = n + 1 end
  return n
end

function I.stop(p)
  if p and p.code == nil then
    C.kill(p, "sigterm")
    C.wait(p)
  end
end

-- A PeerNet instance `name` on the node, with its own data dir, on port
-- (0: any); returns its hex key.
function I.elixir(node, name, port)
  return node:evalf('PNI.start(:%s, %q, %d)', name, I.tmp() .. "/ex", port or 0)
end

-- The instance trusts h and dials it through discovery (so it redials).
function I.elixir_dials(node, name, h)
  node:evalf('PeerNet.pair(:%s, %s)', name, E.key(h.key))
  node:evalf('PNI.announce(:%s, "%s", %d)', name, h.key, h.port)
end

-- Waits (on the node) until instance name has a link to key.
function I.wait_linked(node, name, key)
  return node:evalf('PNI.wait(fn -> PNI.connected?(:%s, "%s") end)', name, key) == "true"
end

-- Waits until host h (serving) reports a link to key.
-- The running serve's view of peer key (its control socket), or nil.
function I.host_peer(h, key)
  local code, out = I.run(h, "peers", "--json")
  if code ~= 0 then return nil end
  for _, p in ipairs(require("dkjson").decode(out).peers) do
    if p.key == key then return p end
  end
end

-- Waits until h's running serve lists key as trusted: trust add edits the
-- file, and serve reads it when its watch fires.
function I.wait_host_trusts(h, key)
  return N.wait(function() return (I.host_peer(h, key) or {}).trusted end)
end

function I.wait_host_linked(h, key)
  return N.wait(function() return (I.host_peer(h, key) or {}).status == "connected" end)
end

-- Instance name calls the echo handler of host key with the Elixir
-- expression expr and compares the reply with want (default: expr's value)
-- exactly; "equal", or what came back instead.
function I.roundtrip(node, name, key, expr, want)
  return node:evalf([[
    v = (%s)
    want = (%s)
    case PeerNet.call(:%s, %s, :echo, v, 10_000) do
      {:ok, got} ->
        if PNI.same?(got, want), do: "equal", else: "came back as " <> inspect(got, limit: 20)
      other -> "failed: " <> inspect(other)
    end]], expr, want or "v", name, E.key(key))
end

function I.cleanup()
  C.reap()
  for _ = 1, 10 do uv.run("nowait") end
  for _, d in ipairs(dirs) do H.rmdir(d) end
  dirs = {}
end

return I
