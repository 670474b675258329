-- A real PeerNet (Elixir) node for the interop specs: one long-lived
-- `mix run` of spec/interop/node.exs per spec file, in the compiled copy of
-- the reference library that the interop_prepare fixture leaves in the build
-- folder. The spec sends Elixir snippets and gets back their values (see the
-- protocol at the top of node.exs); the spec's loop keeps turning meanwhile,
-- so peernet-host children are read while the node works.
local uv = require "luv"
local N = require "support.net"

local E = {}

E.lib = H.build_dir .. "/peer_net"
local SCRIPT = H.source_dir .. "/spec/interop/node.exs"

local Node = {}
Node.__index = Node

local function unhex(s) return (s:gsub("..", function(b) return string.char(tonumber(b, 16)) end)) end

-- Quotes a Lua string as an Elixir binary literal (any bytes).
function E.bin(s)
  local parts = {}
  for i = 1, #s do parts[i] = tostring(s:byte(i)) end
  return "<<" .. table.concat(parts, ", ") .. ">>"
end

-- An Elixir expression for a hex key as the 32 raw bytes PeerNet wants.
function E.key(hex) return string.format('PNI.unhex("%s")', hex) end

-- opts.netns: the node runs inside that network namespace.
function E.start(opts)
  opts = opts or {}
  assert(io.open(E.lib .. "/.pn-source"), "no compiled reference library in " .. E.lib
    .. ": run the interop specs through ctest (the interop_prepare fixture makes it)")
  local home = H.build_dir .. "/peer_net-home"
  local node = setmetatable({ out = "", err = "", answers = {} }, Node)
  node.stdin, node.stdout, node.stderr = uv.new_pipe(false), uv.new_pipe(false), uv.new_pipe(false)
  local env = { "HOME=" .. home, "MIX_HOME=" .. home .. "/mix", "MIX_ENV=test",
                "PATH=" .. (os.getenv("PATH") or "/usr/bin:/bin"), "LANG=C.UTF-8" }
  local file, args = "mix", { "run", "--no-compile", "--no-start", SCRIPT }
  if opts.netns then
    file, args = "ip", { "netns", "exec", opts.netns, "mix", table.unpack(args) }
  end
  local handle, pid = uv.spawn(file, {
    args = args,
    cwd = E.lib, env = env, stdio = { node.stdin, node.stdout, node.stderr },
  }, function(code, signal) node.code, node.signal = code, signal end)
  assert(handle, pid)
  node.handle = handle
  node.stdout:read_start(function(e, data)
    if not data then return end
    node.out = node.out .. data
    while true do
      local line, rest = node.out:match("^([^\n]*)\n(.*)$")
      if not line then break end
      node.out = rest
      local kind, hex = line:match("^@@pn (%a+) ?(%x*)$")
      if kind then node.answers[#node.answers + 1] = { kind = kind, value = unhex(hex) } end
    end
  end)
  node.stderr:read_start(function(e, data)
    if data then node.err = (node.err .. data):sub(-8000) end
  end)
  local first = node:answer(60000)
  assert(first.kind == "ready", "the Elixir node did not start: " .. node.err)
  node.version = first.value
  return node
end

function Node:answer(ms)
  assert(N.wait(function() return #self.answers > 0 or self.code ~= nil end, ms or 30000),
    "the Elixir node did not answer; its stderr:\n" .. self.err)
  assert(#self.answers > 0, "the Elixir node exited (" .. tostring(self.code) .. "); its stderr:\n"
    .. self.err)
  return table.remove(self.answers, 1)
end

-- Evaluates an Elixir snippet: true, value or false, the error it raised.
function Node:try(code, ms)
  self.stdin:write(H.hex(code) .. "\n")
  local a = self:answer(ms)
  return a.kind == "ok", a.value
end

-- Evaluates a snippet; its value (a binary, or inspect/2 of any other term).
function Node:eval(code, ms)
  local ok, v = self:try(code, ms)
  if not ok then error("Elixir: " .. code .. "\n" .. v, 2) end
  return v
end

-- Evaluates string.format(fmt, ...).
function Node:evalf(fmt, ...) return self:eval(string.format(fmt, ...)) end

-- The log the node wrote (the reference logs on stderr).
function Node:log() return self.err end

function Node:close()
  if self.closed then return end
  self.closed = true
  if not self.stdin:is_closing() then self.stdin:close() end
  if not N.wait(function() return self.code ~= nil end, 10000) then self.handle:kill("sigkill") end
  N.wait(function() return self.code ~= nil end, 5000)
  for _, h in ipairs { self.handle, self.stdout, self.stderr } do
    if not h:is_closing() then h:close() end
  end
end

-- A free TCP port on 127.0.0.1 (bound and released: the reference and
-- `serve` want a fixed port so that a restart comes back where it was).
-- A port for an instance or a serve (see support.net).
E.free_port = N.free_tcp_port

return E
