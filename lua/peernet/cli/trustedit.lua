-- Editing the trust list: trust add/rm in a command of their own, or in the
-- running host (the control socket's "trust" op), which then trusts or
-- untrusts the key at once instead of when its watch of the file settles.
-- And the lookup of a stranger's key by a prefix (`trust add 02903c...`),
-- which only shows the full key: announces are not authenticated, so the
-- stranger a prefix matches may be anyone's forgery (it can push the real
-- key out of the host's table of strangers), and the host cannot tell a
-- refused key (proven by a handshake) from an announced one. The operator
-- compares the fingerprint and trusts the full key.
local peernet = require "peernet"
local datadir = require "peernet.cli.datadir"

local M = {}

M.PREFIX_MIN = 4 -- hex digits: fewer would match by chance among 256 strangers

-- Runs edit(store) on the trust list opened for writing, and closes the
-- store however edit ends (a throw must not leave the lock held). wait:
-- false when no wait for another writer is allowed (inside serve's loop).
local function with_store(p, wait, edit)
  local store, e = datadir.open_trust(p, true, wait)
  if not store then return nil, "failure", e end
  local res = table.pack(pcall(edit, store))
  store:close()
  if not res[1] then return nil, "failure", tostring(res[2]) end
  return table.unpack(res, 2, res.n)
end

local function text_or_nil(v) return v == nil or (type(v) == "string" and #v <= 4096) end

-- Adds key (hex) with opts.label / opts.addr and saves. Returns the entry,
-- or nil, exit kind ("usage" | "failure"), message.
function M.add(p, key, opts, wait)
  if not text_or_nil(opts.label) or not text_or_nil(opts.addr) then
    return nil, "usage", "label and addr must be text"
  end
  local kp = datadir.load_identity(p)
  if kp and peernet.keys.parse(key) == kp:public() then return nil, "usage", "that is this host's own key" end
  return with_store(p, wait, function(store)
    local ok, ae = store:add(key, { label = opts.label, addr = opts.addr })
    if not ok then return nil, "usage", ae end
    local saved, se = store:save()
    if not saved then return nil, "failure", se end
    return store:get(key)
  end)
end

-- Removes the entry of peer (key or label) and saves: the entry that went,
-- or nil, kind, message.
function M.rm(p, peer, wait)
  return with_store(p, wait, function(store)
    local en = store:get(peer)
    if not en then return nil, "failure", "no peer with key or label '" .. peer .. "' in " .. p.trust end
    local ok, re = store:remove(peer)
    if not ok then return nil, "failure", re end
    local saved, se = store:save()
    if not saved then return nil, "failure", se end
    return en
  end)
end

-- Is text a prefix `trust add` may look up (hex, shorter than a key)?
function M.is_prefix(text)
  return #text >= M.PREFIX_MIN and #text < 64 and text:match("^%x+$") ~= nil
end

-- The stranger (untrusted peer of peers) whose key starts with prefix:
-- the peer, or nil and a message (none, or which ones it could be).
function M.match(peers, prefix)
  prefix = prefix:lower()
  local hits = {}
  for _, peer in ipairs(peers) do
    if not peer.trusted and peer.key:sub(1, #prefix) == prefix then hits[#hits + 1] = peer end
  end
  if #hits == 1 then return hits[1] end
  if #hits == 0 then
    return nil, "not a key, and no discovered or refused key starts with " .. prefix
  end
  local keys = {}
  for i, peer in ipairs(hits) do keys[i] = peer.key end
  return nil, prefix .. " matches " .. #hits .. " keys, give more of it: " .. table.concat(keys, ", ")
end

-- The control socket's "trust" op for host h of data dir p, in front of
-- handler: {op = "trust", action = "add", key =, label =, addr =} or
-- {op = "trust", action = "rm", peer =}; answers {ok = true, entry = {...}}
-- or {ok = false, kind = "usage" | "failure", message =}.
function M.wrap(handler, h, p)
  return function(req, reply)
    if req.op ~= "trust" then return handler(req, reply) end
    local en, kind, msg
    -- No wait for another writer here: this is serve's loop. A writer
    -- holding the lock gets "another process is changing ...; try again".
    if req.action == "add" and type(req.key) == "string" and peernet.keys.parse(req.key) then
      en, kind, msg = M.add(p, req.key, { label = req.label, addr = req.addr }, false)
      if en then h:trust(en.key, en.addr) end
    elseif req.action == "rm" and type(req.peer) == "string" then
      en, kind, msg = M.rm(p, req.peer, false)
      if en then h:untrust(en.key) end
    else
      kind, msg = "bad_request", "trust needs action add with a key, or rm with a peer"
    end
    if not en then return reply { ok = false, kind = kind, message = msg } end
    reply { ok = true, entry = en }
  end
end

return M
