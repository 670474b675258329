-- trust add/rm/ls: the trust list of the data dir.
local peernet = require "peernet"
local format = require "peernet.format"
local datadir = require "peernet.cli.datadir"
local output = require "peernet.cli.output"

local EXIT, out, fail = output.EXIT, output.out, output.fail

local M = {}

local function entry_text(en)
  return ("%s  %s  %s  %s"):format(en.key, en.label or "-", en.addr or "-", en.added or "-")
end

-- Saves the changed list and shows the entry it was about.
local function save(o, store, en, verb)
  local saved, se = store:save()
  if not saved then return fail("failure", se) end
  output.json_or(o, en, verb .. " " .. entry_text(en))
  return EXIT.ok
end

local sub = {}

function sub.add(o, p, store, e)
  if #o.pos ~= 2 then return fail("usage", "usage: peernet-host trust add KEY [--label L] [--addr HOST:PORT]") end
  if not peernet.keys.parse(o.pos[2]) then return fail("usage", "not a key: " .. o.pos[2]) end
  if not store then return fail("failure", e) end
  local kp = datadir.load_identity(p)
  if kp and peernet.keys.parse(o.pos[2]) == kp:public() then
    return fail("usage", "that is this host's own key")
  end
  local ok, ae = store:add(o.pos[2], { label = o.label, addr = o.addr })
  if not ok then return fail("usage", ae) end
  return save(o, store, store:get(o.pos[2]), "trusted")
end

function sub.rm(o, p, store, e)
  if #o.pos ~= 2 then return fail("usage", "usage: peernet-host trust rm KEY|LABEL") end
  if not store then return fail("failure", e) end
  local en = store:get(o.pos[2])
  if not en then return fail("failure", "no peer with key or label '" .. o.pos[2] .. "' in " .. p.trust) end
  local ok, re = store:remove(o.pos[2])
  if not ok then return fail("failure", re) end
  return save(o, store, en, "removed")
end

function sub.ls(o, _, store, e)
  if #o.pos ~= 1 then return fail("usage", "usage: peernet-host trust ls") end
  if not store then return fail("failure", e) end
  local list = store:list()
  if o.json then
    out(format.json(list))
  elseif #list == 0 then
    out("(the trust list is empty: peernet-host trust add KEY)")
  else
    local rows = {}
    for i, en in ipairs(list) do rows[i] = { en.key, en.label or "-", en.addr or "-", en.added or "-" } end
    out(format.columns({ "KEY", "LABEL", "ADDR", "ADDED" }, rows))
  end
  return EXIT.ok
end

M.trust = {
  summary = "manage the trust list: trust add KEY [--label L] [--addr HOST:PORT] | rm KEY|LABEL | ls",
  usage = "trust add KEY [--label L] [--addr HOST:PORT] [--json]\n"
    .. "       peernet-host trust rm KEY|LABEL\n"
    .. "       peernet-host trust ls [--json]",
  opts = { label = "value", addr = "value" },
  run = function(o, p)
    local name = o.pos[1]
    local run = sub[name]
    -- add and rm hold the writer lock from reading to saving.
    local store, e = datadir.open_trust(p, name == "add" or name == "rm")
    local code
    if run then
      code = run(o, p, store, e)
    else
      code = fail("usage", "trust needs add, rm or ls (peernet-host trust --help)")
    end
    if store then store:close() end
    return code
  end,
}

return M
