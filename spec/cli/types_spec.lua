-- The LuaLS definitions (types/peernet.lua, types/host.lua; issue 15).
-- Debian 12 has no lua-language-server, so instead of `--check` this spec
-- checks that every function a script sees is defined there: the ones
-- docs/scripts.md lists, and every function of the `peernet` table a real
-- run script gets (a superset of a handler script's).
local uv = require "luv"
local C = require "support.cli"

local SRC = H.source_dir
local defs = H.read_file(SRC .. "/types/peernet.lua") .. H.read_file(SRC .. "/types/host.lua")

-- "peernet.admin.call" is defined as `function admin.call(` of the class
-- peernet.admin, or `function peernet.admin.call(`.
local function defined(name)
  local short = name:match("^peernet%.(%a+%.[%w_]+)$")
  return defs:find("\nfunction " .. name .. "(", 1, true) ~= nil
    or (short ~= nil and defs:find("\nfunction " .. short .. "(", 1, true) ~= nil)
    or defs:find("\n---@field " .. name:match("[%w_]+$") .. " ", 1, true) ~= nil
end

local tmp
setup(function() tmp = H.tmpdir() end)
teardown(function()
  C.reap()
  for _ = 1, 10 do uv.run("nowait") end -- the children's handles close
  H.rmdir(tmp)
end)

describe("types/", function()
  it("are LuaLS meta files", function()
    assert.truthy(H.read_file(SRC .. "/types/peernet.lua"):find("^%-%-%-@meta peernet\n"))
    assert.truthy(H.read_file(SRC .. "/types/host.lua"):find("^%-%-%-@meta host\n"))
    -- They are Lua: loading them defines nothing at run time that matters.
    assert(loadfile(SRC .. "/types/peernet.lua"))
    assert(loadfile(SRC .. "/types/host.lua"))
  end)

  it("define every function docs/scripts.md lists", function()
    local doc = H.read_file(SRC .. "/docs/scripts.md") .. H.read_file(SRC .. "/docs/values.md")
    local seen = 0
    for name in doc:gmatch("(peernet%.[%w_.]+)%(") do
      if not name:match("^peernet%.log%.") or name == "peernet.log.debug" then
        assert.truthy(defined(name), name .. " has no definition")
        seen = seen + 1
      end
    end
    for _, name in ipairs { "peernet.log.debug", "peernet.log.info", "peernet.log.warn",
      "peernet.log.error", "host.exec", "host.read", "host.write", "timer:cancel" } do
      assert.truthy(defs:find("\nfunction " .. name:gsub("^peernet%.", "") .. "(", 1, true)
        or defs:find("\nfunction " .. name .. "(", 1, true), name)
    end
    assert.truthy(seen > 20, seen)
  end)

  it("define every function of the peernet table a run script sees", function()
    H.write_file(tmp .. "/list.lua", [[
local names, seen = {}, {}
-- The script API, then the Lua module behind it (its __index).
local mt = getmetatable(peernet)
for _, t in ipairs { peernet, mt and type(mt.__index) == "table" and mt.__index or {} } do
  for k, v in pairs(t) do
    if type(v) == "function" and not seen[k] then
      seen[k] = true
      names[#names + 1] = "peernet." .. k
    end
  end
end
for _, sub in ipairs { "log", "admin", "etf", "pattern", "args" } do
  for k, v in pairs(peernet[sub]) do
    if type(v) == "function" then names[#names + 1] = "peernet." .. sub .. "." .. k end
  end
end
table.sort(names)
print(table.concat(names, "\n"))
]])
    C.init(tmp .. "/d")
    local code, out, err = C.run { "--data-dir", tmp .. "/d", "run", tmp .. "/list.lua" }
    assert.equal(0, code, err)
    local n = 0
    for name in out:gmatch("[^\n]+") do
      assert.truthy(defined(name), name .. " has no definition in types/")
      n = n + 1
    end
    assert.truthy(n > 25, out)
  end)

  it("types/testing.lua defines what docs/testing.md shows of peernet.testing", function()
    local t = H.read_file(SRC .. "/types/testing.lua")
    assert.truthy(t:find("^%-%-%-@meta peernet.testing\n"))
    assert(loadfile(SRC .. "/types/testing.lua"))
    local doc = H.read_file(SRC .. "/docs/testing.md")
    local n = 0
    for name in doc:gmatch("d:([%w_]+)%(") do
      assert.truthy(t:find("function device:" .. name .. "(", 1, true), "device:" .. name)
      n = n + 1
    end
    for name in doc:gmatch("p:([%w_]+)%(") do
      assert.truthy(t:find("function pending:" .. name .. "(", 1, true), "pending:" .. name)
    end
    for name in doc:gmatch("T%.([%w_]+)") do
      assert.truthy(t:find("function testing." .. name .. "(", 1, true)
        or t:find("---@field " .. name .. " ", 1, true), "T." .. name)
    end
    assert.truthy(n > 8)
  end)
end)
