-- The data dir: where it is, what it holds, and reading its identity and
-- trust list (docs/cli.md "The data dir").
local uv = require "luv"
local peernet = require "peernet"
local control = require "peernet.control"

local M = {}

-- The longest a trust list writer waits for another (PEERNET_LOCK_WAIT_MS).
local LOCK_WAIT_MAX_MS = 3600000

function M.default()
  local home = os.getenv("PEERNET_HOME")
  if home and home ~= "" then return home end
  local xdg = os.getenv("XDG_DATA_HOME")
  if xdg and xdg ~= "" then return xdg .. "/peernet" end
  local h = os.getenv("HOME")
  if not h or h == "" then return nil, "neither PEERNET_HOME, XDG_DATA_HOME nor HOME is set: use --data-dir" end
  return h .. "/.local/share/peernet"
end

function M.paths(dir)
  return {
    dir = dir,
    identity = dir .. "/identity.keys",
    trust = dir .. "/trust.list",
    handlers = dir .. "/handlers",
    config = dir .. "/config.lua",
    control = control.path(dir),
  }
end

-- mkdir -p, each created directory 0700 (XDG: user data is private).
function M.mkdirs(dir)
  local path = dir:sub(1, 1) == "/" and "" or "."
  for part in dir:gmatch("[^/]+") do
    path = path .. "/" .. part
    local st = uv.fs_stat(path)
    if not st then
      local ok, e = uv.fs_mkdir(path, tonumber("700", 8))
      if not ok and not tostring(e):match("^EEXIST") then return nil, e end
    elseif st.type ~= "directory" then
      return nil, path .. " is not a directory"
    end
  end
  return true
end

function M.load_identity(p)
  if not uv.fs_stat(p.identity) then
    return nil, "no identity in " .. p.dir .. " (run `peernet-host init` first, or use --data-dir)"
  end
  local kp, e = peernet.keys.load(p.identity)
  if not kp then return nil, p.identity .. ": " .. tostring(e) end
  return kp
end

-- lock: for a read-modify-write (trust add/rm, init): the store holds the
-- trust list's writer lock until store:close(), so concurrent writers take
-- turns instead of losing each other's entries. PEERNET_LOCK_WAIT_MS bounds
-- the wait for another writer (default 10000).
function M.open_trust(p, lock)
  local opts
  if lock then
    opts = { lock = true, wait_ms = math.tointeger(tonumber(os.getenv("PEERNET_LOCK_WAIT_MS") or "")) }
    if opts.wait_ms and (opts.wait_ms < 0 or opts.wait_ms > LOCK_WAIT_MAX_MS) then opts.wait_ms = nil end
  end
  local store, e = peernet.trust.open(p.trust, opts)
  if not store then return nil, tostring(e) end
  return store
end

-- PEER (key in any text form, or a label) -> trust entry | nil, msg.
function M.resolve_peer(p, peer)
  local store, e = M.open_trust(p)
  if not store then return nil, e end
  local entry = store:get(peer)
  if entry then return entry end
  if peernet.keys.parse(peer) then
    return nil, "peer " .. peer .. " is not in the trust list (peernet-host trust add KEY --addr HOST:PORT)"
  end
  return nil, "no peer with key or label '" .. peer .. "' in the trust list"
end

-- The config file's path when there is one.
function M.config(p)
  return uv.fs_stat(p.config) and p.config or nil
end

return M
