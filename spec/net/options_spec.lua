-- The host's settings are one list (PN_HOST_OPTIONS, include/peernet/options.h):
-- peernet.host.options() gives it, docs/host.md documents it row for row,
-- and host.new checks each setting with a message that names it.
local peernet = require "peernet"
local N = require "support.net"

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

-- The rows of docs/host.md's settings table: name -> default cell.
local function documented()
  local text = read_file(H.source_dir .. "/docs/host.md")
  local section = assert(text:match("\n## Settings and bounds\n(.-)\n## ") or
    text:match("\n## Settings and bounds\n(.*)$"), "no Settings and bounds section")
  local table_text = assert(section:match("| setting | default |[^\n]*\n|[-|]+|\n(.-)\n\n"),
    "no settings table")
  local rows = {}
  for line in (table_text .. "\n"):gmatch("([^\n]*)\n") do
    local name, default = line:match("^| `([%w_]+)` | ([^|]+) |")
    assert(name, "a row that names no setting: " .. line)
    assert(not rows[name], "documented twice: " .. name)
    rows[name] = default:gsub("%s+$", "")
  end
  return rows
end

-- A default cell as a value of the option's kind.
local units = { ms = 1, s = 1000, MiB = 1048576, KiB = 1024, B = 1 }
local function parse(kind, cell)
  if kind == "TEXT" then
    if cell:match("^%(none") then return nil end
    return cell
  end
  if kind == "FLAG" or kind == "NETMON" then
    if cell == "on" then return kind == "FLAG" or 1 end
    if cell == "off" then
      if kind == "FLAG" then return false end
      return 0
    end
    error("not on or off: " .. cell)
  end
  local n, unit = cell:match("^([%d.]+)%s*(%a*)")
  assert(n, "not a number: " .. cell)
  local scale = unit == "" and 1 or units[unit]
  if kind == "MS" and unit == "" then scale = 1 end
  assert(scale, "unknown unit in " .. cell)
  return math.tointeger(tonumber(n) * scale)
end

-- "C: on, Lua: off" gives both defaults; any other cell one for both.
local function defaults(kind, cell)
  local c, lua = cell:match("^C: ([^,]+), Lua: (.+)$")
  if c then return parse(kind, c), parse(kind, lua) end
  local v = parse(kind, cell)
  return v, v
end

describe("peernet.host.options", function()
  local options = peernet.host.options()

  it("lists every setting once, with its kind, range and meaning", function()
    assert.is_true(#options > 20)
    local seen = {}
    for _, o in ipairs(options) do
      assert.is_nil(seen[o.name], o.name)
      seen[o.name] = true
      assert.is_string(o.kind)
      assert.is_true(o.min <= o.max, o.name)
      assert.is_true(#o.meaning > 0, o.name)
    end
    for _, name in ipairs { "frame_cap", "call_timeout", "ping_timeout", "discovery", "netmon",
      "broadcast", "mdns_instance", "weak" } do
      assert.is_true(seen[name], name)
    end
  end)

  it("matches docs/host.md: every setting documented with its default, none extra", function()
    local rows = documented()
    for _, o in ipairs(options) do
      local cell = rows[o.name]
      assert.is_not_nil(cell, o.name .. " is not in docs/host.md's settings table")
      local c, lua = defaults(o.kind, cell)
      assert.are.equal(o.default, c, o.name .. ": documented default " .. cell)
      assert.are.equal(o.lua_default, lua, o.name .. ": documented Lua default " .. cell)
      rows[o.name] = nil
    end
    assert.are.same({}, rows) -- documented but no such setting
  end)
end)

describe("peernet.host.new settings", function()
  local function new(opts)
    opts.secret = opts.secret or N.keys():secret()
    opts.listen = false
    return peernet.host.new(opts)
  end

  it("refuses a setting out of its range with a message naming it", function()
    local h, msg, _, code = new { ping_timeout = 0 }
    assert.is_nil(h)
    assert.are.equal("ping_timeout: must be 1..86400000 ms, got 0", msg)
    assert.are.equal("einval", code)
  end)

  it("checks every numeric setting at both ends of its range", function()
    local max_of = { MS = 4294967295, U32 = 4294967295, SIZE = 4294967295, PORT = 65535 }
    for _, o in ipairs(peernet.host.options()) do
      local tmax = max_of[o.kind]
      if tmax then
        local probes = {}
        if o.min > 0 then probes[#probes + 1] = o.min - 1 end
        if o.max < tmax then probes[#probes + 1] = o.max + 1 end
        for _, v in ipairs(probes) do
          local h, msg = new { [o.name] = v }
          assert.is_nil(h, o.name .. " = " .. v)
          assert.are.equal(o.name .. ":", msg:match("^[%w_]+:"), msg)
          assert.truthy(msg:find("got " .. v, 1, true), msg)
        end
      end
    end
  end)

  it("refuses settings that depend on another with a message naming it", function()
    local h, msg = new { backoff_min = 1000, backoff_max = 500 }
    assert.is_nil(h)
    assert.truthy(msg:match("^backoff_max: must be at least backoff_min"), msg)
    h, msg = new { frame_cap = 4096, max_outbuf = 4096 }
    assert.is_nil(h)
    assert.truthy(msg:match("^max_outbuf: must be at least frame_cap %+ 4"), msg)
    h, msg = new { broadcast = string.rep("1", 64) }
    assert.is_nil(h)
    assert.truthy(msg:match("^broadcast: must be 1..63 bytes"), msg)
  end)

  it("takes every setting at its default, and ignores keys that name none", function()
    local opts = { no_such_setting = 1 }
    for _, o in ipairs(peernet.host.options()) do
      if o.kind == "NETMON" then
        opts[o.name] = o.lua_default ~= 0 -- Lua says true or false ("poll": 2)
      elseif o.lua_default ~= nil then
        opts[o.name] = o.lua_default
      end
    end
    local h = assert(new(opts))
    h:close()
  end)

  it("raises for a value no setting of its kind can hold", function()
    assert.has_error(function() new { call_timeout = -1 } end, "host.new: call_timeout out of range: must be 1..86400000 ms, got -1")
    assert.has_error(function() new { mdns_port = 70000 } end, "host.new: mdns_port out of range: must be 0..65535, got 70000")
    assert.has_error(function() new { call_timeout = "soon" } end,
      "host.new: call_timeout must be an integer")
    assert.has_error(function() new { netmon = 1 } end,
      'host.new: netmon must be true, false or "poll"')
  end)
end)

describe("peernet.host stats and events", function()
  it("stats() has every counter, each a number", function()
    local h = peernet.host.new { secret = N.keys():secret(), listen = false }
    local s = h:stats()
    local n = 0
    for name, v in pairs(s) do
      n = n + 1
      assert.is_number(v, name)
    end
    assert.is_true(n >= 24)
    for _, name in ipairs { "connections", "accepted", "frames_in", "sends_dropped", "heard" } do
      assert.is_number(s[name], name)
    end
    h:close()
  end)

  it("on() takes the event names and refuses others", function()
    local h = peernet.host.new { secret = N.keys():secret(), listen = false }
    for _, ev in ipairs { "connected", "disconnected", "discovered" } do h:on(ev, function() end) end
    assert.has_error(function() h:on("nonsense", function() end) end)
    h:close()
  end)
end)
