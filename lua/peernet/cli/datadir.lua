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
  local st, se = uv.fs_stat(p.identity)
  if not st then
    -- Only a file that is not there means "no identity": a data dir this
    -- user cannot read (EACCES) is reported as what it is.
    local why = tostring(se)
    if not why:match("^ENOENT") then
      -- luv's "EACCES: permission denied: PATH", without the path said already
      return nil, "cannot read " .. p.identity .. ": " .. (why:match("^(%u+: [^:]+)") or why)
    end
    return nil, "no identity in " .. p.dir .. " (run `peernet-host init` first, or use --data-dir)"
  end
  local kp, e = peernet.keys.load(p.identity)
  if not kp then return nil, p.identity .. ": " .. tostring(e) end
  return kp
end

-- lock: for a read-modify-write (trust add/rm, init): the store holds the
-- trust list's writer lock until store:close(), so concurrent writers take
-- turns instead of losing each other's entries. PEERNET_LOCK_WAIT_MS bounds
-- the wait for another writer (default 10000); wait = false: none at all
-- (a host's event loop must not block on another process).
function M.open_trust(p, lock, wait)
  local opts
  if lock then
    opts = { lock = true, wait_ms = math.tointeger(tonumber(os.getenv("PEERNET_LOCK_WAIT_MS") or "")) }
    if opts.wait_ms and (opts.wait_ms < 0 or opts.wait_ms > LOCK_WAIT_MAX_MS) then opts.wait_ms = nil end
    if wait == false then opts.wait_ms = 0 end
  end
  local store, e = peernet.trust.open(p.trust, opts)
  if not store then return nil, tostring(e) end
  return store
end

-- Does text look like a key someone mistyped rather than a label? Labels
-- are 1..64 of [A-Za-z0-9._-]. A character no label has (base64's + / =)
-- is a key attempt; so is a long run that is nearly all hex digits (a
-- digit or two off, one too many or too few) or looks like base64 (upper
-- and lower case and digits, no dot).
local KEYISH_MIN = 32
local function looks_like_key(text)
  if text == "" or #text > 64 or text:find("[^%w._-]") then return true end
  if #text < KEYISH_MIN then return false end
  local _, hex = text:gsub("%x", "")
  if hex >= #text - 2 then return true end
  return text:find("%u") and text:find("%l") and text:find("%d") and not text:find("%.") and true or false
end

-- PEER (key in any text form, or a label) -> trust entry | nil, msg,
-- exit code name ("usage" for something that is not a key, nil: unreachable).
function M.resolve_peer(p, peer)
  local store, e = M.open_trust(p)
  if not store then return nil, e, "failure" end
  local entry = store:get(peer)
  if entry then return entry end
  if peernet.keys.parse(peer) then
    return nil, "peer " .. peer .. " is not in the trust list (peernet-host trust add KEY --addr HOST:PORT)"
  end
  if looks_like_key(peer) then
    return nil, "not a key: " .. peer .. " (a key is 64 hex digits or 44 base64 characters;"
      .. " no peer has that label either)", "usage"
  end
  return nil, "no peer with key or label '" .. peer .. "' in the trust list"
end

-- A unix socket's path is at most this many bytes on Linux
-- (sizeof(sockaddr_un.sun_path) less its terminating NUL); libuv cuts a
-- longer one short, which would put the socket outside the data dir.
M.SOCKET_PATH_MAX = 107

-- true, or nil, message when the control socket's path does not fit.
function M.control_fits(p)
  if #p.control <= M.SOCKET_PATH_MAX then return true end
  return nil, ("the control socket %s would be %d bytes, more than the %d a unix socket path holds:"
    .. " use a shorter --data-dir (or a relative one)"):format(p.control, #p.control, M.SOCKET_PATH_MAX)
end

-- The config file's path when there is one.
function M.config(p)
  return uv.fs_stat(p.config) and p.config or nil
end

return M
