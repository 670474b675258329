-- init and id: this host's identity.
local uv = require "luv"
local peernet = require "peernet"
local format = require "peernet.format"
local datadir = require "peernet.cli.datadir"
local output = require "peernet.cli.output"

local EXIT, out, fail = output.EXIT, output.out, output.fail

local M = {}

M.init = {
  run = function(o, p)
    if #o.pos > 0 then return fail("usage", "init takes no arguments") end
    local ok, e = datadir.mkdirs(p.dir)
    if not ok then return fail("failure", "cannot create " .. p.dir .. ": " .. tostring(e)) end
    uv.fs_chmod(p.dir, tonumber("700", 8))
    local created = false
    local kp
    if uv.fs_stat(p.identity) then
      kp, e = datadir.load_identity(p)
      if not kp then return fail("failure", e) end
    else
      kp = peernet.keys.generate()
      local saved, se = kp:save(p.identity)
      if not saved then return fail("failure", "cannot save " .. p.identity .. ": " .. tostring(se)) end
      created = true
    end
    if not uv.fs_stat(p.trust) then
      local store, te = datadir.open_trust(p, true)
      if not store then return fail("failure", te) end
      -- Another init or trust add may have written it meanwhile: keep theirs.
      local saved, se = true, nil
      if not uv.fs_stat(p.trust) then saved, se = store:save() end
      store:close()
      if not saved then return fail("failure", "cannot write " .. p.trust .. ": " .. tostring(se)) end
    end
    datadir.mkdirs(p.handlers)
    local key = kp:public_hex()
    output.json_or(o, { key = key, data_dir = p.dir, created = created },
      (created and "created identity " or "identity exists: ") .. key .. "\ndata dir: " .. p.dir)
    return EXIT.ok
  end,
}

M.id = {
  run = function(o, p)
    if #o.pos > 0 then return fail("usage", "id takes no arguments") end
    local kp, e = datadir.load_identity(p)
    if not kp then return fail("failure", e) end
    local key = kp:public_hex()
    local raw = kp:public()
    if o.json then
      out(format.json { key = key, base64 = peernet.keys.base64(raw),
        fingerprint = peernet.keys.fingerprint(raw) })
    elseif o.qr then
      local m, qe = peernet.qr(key)
      if not m then return fail("failure", qe) end
      out(format.qr_text(m))
      out(key)
    else
      out(key)
    end
    return EXIT.ok
  end,
}

return M
