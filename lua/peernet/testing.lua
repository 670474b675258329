-- peernet.testing: a handler directory in a real sandboxed runtime, driven
-- by a test, with no network. docs/testing.md is the guide.
--
--   local T = require "peernet.testing"
--   local d = T.load("handlers", { config = "config.lua" })  -- or grants = "return {...}"
--   d:call(key, "name", args)      --> value | nil, reason, kind (as a remote caller sees it)
--   d:start(key, "name", args)     --> pending call: p:done(), p:result()
--   d:send(key, "name", args)
--   d:event("connected", key)      -- also "disconnected" (with a reason), "discovered"
--   d:advance(ms)                  -- the virtual clock: after/every/sleep fire in order
--   d:stub(peer, "name", fn | value)   -- answers the scripts' peernet.call/send to peer
--   d.sent                         -- every call and send the scripts made: {to, name, args, what}
--   d:logged(pattern)  d:close()
--
-- The runtime runs on a host that opens no socket (listen, discovery,
-- mDNS and netmon off); calls are delivered to its handlers in process
-- (pn_host_deliver), the scripts' calls go to the stubs, and its timers run
-- on a virtual clock that only advance() moves.
local peernet = require "peernet"

local M = {}

-- What a stub returns to read as a call with no answer.
M.timeout = setmetatable({}, { __name = "peernet.testing.timeout" })
M.closed = setmetatable({}, { __name = "peernet.testing.closed" })

function M.key()
  return peernet.keys.generate():public_hex()
end

local Device = {}
Device.__index = Device

-- A config.lua in a directory of its own: the runtime refuses grants
-- from a directory others may write (/tmp itself).
local function tmpconfig(text)
  local p = assert(io.popen("mktemp -d 2>/dev/null"))
  local dir = p:read("l")
  p:close()
  assert(dir and dir ~= "", "peernet.testing: mktemp -d failed")
  local path = dir .. "/config.lua"
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path, dir
end

local function file_exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

-- The answer of the stub for a call: an outcome for peernet.runtime's outbound.
local function outcome(ok, v, reason)
  if v == M.timeout then return "timeout" end
  if v == M.closed then return "closed" end
  if v == nil and reason ~= nil then return "error", reason end
  return "ok", v
end

function M.load(dir, opts)
  opts = opts or {}
  local d = setmetatable({ dir = dir, sent = {}, logs = {}, stubs = {}, errors = {} }, Device)
  local config = opts.config
  if opts.grants then
    config, d.tmp_dir = tmpconfig(opts.grants)
  elseif config == nil and file_exists(dir .. "/../config.lua") then
    config = dir .. "/../config.lua"
  end
  d.keypair = peernet.keys.generate()
  d.self = d.keypair:public_hex()
  d.host = assert(peernet.host.new { secret = d.keypair:secret(), listen = false, discovery = false,
    mdns = false, netmon = false, weak = true })
  d.rt = assert(peernet.runtime.new(d.host, {
    config = config or nil,
    trust = opts.trust,
    virtual_clock = true,
    log = function(level, msg) d.logs[#d.logs + 1] = level .. " " .. msg end,
    outbound = function(what, peer, name, args, timeout)
      local rec = { what = what, to = peer, name = name, args = args, timeout = timeout }
      d.sent[#d.sent + 1] = rec
      if what == "connect" then
        -- a peer the spec stubbed is reachable; any other is not
        local prefix = peer .. "\0"
        for k in pairs(d.stubs) do
          if k:sub(1, #prefix) == prefix then return "ok" end
        end
        return "not_connected"
      end
      local stub = d.stubs[peer .. "\0" .. name]
      if stub == nil then return "not_connected" end
      if type(stub) ~= "function" then return outcome(true, stub) end
      local ok, v, reason = pcall(stub, args, rec)
      if not ok then
        d.errors[#d.errors + 1] = tostring(v)
        return "error", "handler_crash"
      end
      return outcome(true, v, reason)
    end,
  }))
  d.report = d.rt:load_dir(dir)
  d.rt:settle()
  if opts.strict ~= false then
    for _, r in ipairs(d.report) do
      if not r.ok then
        d:close()
        error(("peernet.testing: %s did not load: %s"):format(r.file, tostring(r.err)), 2)
      end
    end
  end
  return d
end

-- peer: a hex key; fn(args, record) returns what the remote handler would
-- (value | nil, reason | peernet.testing.timeout / closed); a value that is
-- not a function is the answer to every call. Without a stub a call reads
-- nil, "not_connected", "local", as for a peer that is not connected.
function Device:stub(peer, name, answer)
  self.stubs[peer .. "\0" .. name] = answer
  return self
end

-- The calls and sends the scripts made to peer (and name, if given).
function Device:sent_to(peer, name)
  local list = {}
  for _, r in ipairs(self.sent) do
    if r.to == peer and (name == nil or r.name == name) then list[#list + 1] = r end
  end
  return list
end

local Pending = {}
Pending.__index = Pending
function Pending:done() return self.result_ ~= nil end
function Pending:result()
  if not self.result_ then
    error(("peernet.testing: the call of '%s' has not been answered yet (it waits on the clock "
      .. "or a stub: advance() first)"):format(self.name), 2)
  end
  return table.unpack(self.result_, 1, self.result_.n)
end

function Device:start(from, name, args)
  local p = setmetatable({ name = name }, Pending)
  assert(self.rt:deliver(from, name, args == nil and {} or args, function(...)
    p.result_ = table.pack(...)
  end))
  self.rt:settle()
  return p
end

function Device:call(from, name, args)
  local p = self:start(from, name, args)
  if not p:done() then
    error(("peernet.testing: '%s' is still waiting (on the virtual clock or a stub): use "
      .. "start() and advance()"):format(name), 2)
  end
  return p:result()
end

function Device:send(from, name, args)
  assert(self.rt:deliver(from, name, args == nil and {} or args))
  self.rt:settle()
end

function Device:event(name, key, detail)
  self.rt:event(name, key, detail)
  self.rt:settle()
end

function Device:advance(ms) return self.rt:advance(ms) end
function Device:now() return self.rt:now() end

function Device:logged(pattern)
  for _, line in ipairs(self.logs) do
    if line:find(pattern) then return line end
  end
  return nil
end

function Device:close()
  if self.closed then return end
  self.closed = true
  self.rt:close()
  self.host:close()
  if self.tmp_dir then
    os.remove(self.tmp_dir .. "/config.lua")
    os.remove(self.tmp_dir)
  end
end

return M
