-- push, logs and console: working on a device from afar (docs/remote.md), through
-- a short-lived host of this data dir's identity, which the device must
-- trust and give the right to (its config.lua's peers).
local uv = require "luv"
local peernet = require "peernet"
local format = require "peernet.format"
local console = require "peernet.cli.console"
local datadir = require "peernet.cli.datadir"
local deploy = require "peernet.cli.deploy"
local help = require "peernet.cli.help"
local hosts = require "peernet.cli.hosts"
local log = require "peernet.cli.log"
local logfeed = require "peernet.cli.logfeed"
local ops = require "peernet.cli.ops"
local options = require "peernet.cli.options"
local output = require "peernet.cli.output"
local prompt = require "peernet.cli.prompt"
local reach = require "peernet.cli.reach"
local signals = require "peernet.cli.signals"
local task = require "peernet.cli.task"

local EXIT, out, err, fail = output.EXIT, output.out, output.err, output.fail

local M = {}

local function usage(cmd)
  return fail("usage", ("usage: peernet-host %s (peernet-host %s --help)"):format(help.find(cmd).usage, cmd))
end

-- Opens the short-lived host and the peer's entry; returns h, entry, addr
-- or nil, exit code (after printing why).
local function open(o, p)
  local entry, pe, pcode = datadir.resolve_peer(p, o.pos[1])
  if not entry then return nil, fail(pcode or "unreachable", pe) end
  local addr = o.addr or entry.addr
  if not addr then
    return nil, fail("unreachable", "no address for " .. o.pos[1]
      .. ": give --addr HOST:PORT or store one with `trust add KEY --addr`")
  end
  local h, he = hosts.short_lived(p)
  if not h then return nil, fail("failure", he) end
  h:trust(entry.key)
  return h, entry, addr
end

-- Calls handle on the peer with value; returns the answer map (ops.call's).
local function call(h, entry, addr, handle, value, timeout)
  local args, ae = peernet.etf.encode(value)
  if not args then return { ok = false, kind = "bad_request", message = ae } end
  local req = { op = "call", peer = entry.key, handle = handle, args = args, timeout = timeout, addr = addr }
  return task.await(function(k) ops.call(h, req, k) end)
end

-- ---- push ---------------------------------------------------------------

local function read_file(path)
  local f, e = io.open(path, "rb")
  if not f then return nil, tostring(e) end
  local t = f:read(deploy.FILE_MAX + 1) or ""
  f:close()
  if #t > deploy.FILE_MAX then return nil, ("%s: over %d bytes"):format(path, deploy.FILE_MAX) end
  return t
end

-- The files to send from the command line's paths: a directory gives its
-- *.lua and admin/*.lua, a file its own name (admin/NAME when it is in a
-- directory called admin). Returns the list or nil, why.
local function collect(paths)
  local files, seen, total = {}, {}, 0
  local function add(path, name)
    local ok = deploy.name_ok(name)
    if ok ~= true then return nil, ok end
    if seen[name] then return nil, name .. ": given twice" end
    local data, e = read_file(path)
    if not data then return nil, e end
    seen[name] = true
    total = total + #data
    files[#files + 1] = { name = name, data = data }
    if #files > deploy.FILES_MAX then return nil, ("more than %d files"):format(deploy.FILES_MAX) end
    if total > deploy.TOTAL_MAX then return nil, ("over %d bytes in all"):format(deploy.TOTAL_MAX) end
    return true
  end
  local function scan(dir, prefix)
    local hd = uv.fs_scandir(dir)
    if not hd then return true end
    local names = {}
    for n, t in uv.fs_scandir_next, hd do
      if t ~= "directory" and n:match("%.lua$") and not n:match("^%.") then names[#names + 1] = n end
    end
    table.sort(names)
    for _, n in ipairs(names) do
      local ok, e = add(dir .. "/" .. n, prefix .. n)
      if not ok then return nil, e end
    end
    return true
  end
  for _, path in ipairs(paths) do
    local st = uv.fs_stat(path)
    if not st then return nil, "no such file or directory: " .. path end
    local ok, e
    if st.type == "directory" then
      ok, e = scan(path, "")
      if ok then ok, e = scan(path .. "/admin", "admin/") end
    else
      local dir, base = path:match("^(.-)([^/]+)$")
      ok, e = add(path, (dir:match("([^/]+)/$") == "admin" and "admin/" or "") .. base)
    end
    if not ok then return nil, e end
  end
  return files
end

local function print_report(o, report)
  local failed = 0
  for _, r in ipairs(report) do
    if r.status == "failed" then failed = failed + 1 end
    if o.json then
      out(format.json { name = r.name, status = r.status, error = r.error, handles = r.handles })
    elseif r.status == "failed" then
      err("failed ", r.name, ": ", tostring(r.error))
    else
      local hs = type(r.handles) == "table" and #r.handles > 0 and ": " .. table.concat(r.handles, ", ") or ""
      out(r.status:gsub("_", " ") .. " " .. r.name .. hs)
    end
  end
  return failed == 0 and EXIT.ok or EXIT.failure
end

M.push = {
  run = function(o, p)
    if #o.pos < 1 then return usage("push") end
    local timeout, te = options.ms(o, "timeout", help.default("push", "timeout"))
    if not timeout then return fail("usage", te) end
    local paths = { table.unpack(o.pos, 2) }
    if #paths == 0 then paths = { "." } end
    local files, fe = collect(paths)
    if not files then return fail("usage", fe) end
    local h, entry, addr = open(o, p)
    if not h then return entry end
    local answer, code = reach.run(function()
      reach.waiting(("pushing to %s (%s)"):format(o.pos[1], addr))
      return call(h, entry, addr, deploy.HANDLE,
        { files = files, dry_run = o["dry-run"] == true, delete = o.delete == true }, timeout)
    end)
    h:close()
    if not answer then return code end
    if not answer.ok then return reach.print_answer(o, answer) end
    local report = peernet.etf.decode(answer.value)
    if type(report) ~= "table" then return fail("failure", "the peer answered something other than a report") end
    return print_report(o, report)
  end,
}

-- ---- logs ---------------------------------------------------------------

local function print_line(o, l)
  if type(l) ~= "table" then return end
  if l.dropped then
    if o.json then out(format.json { event = "dropped", count = l.dropped })
    else out(("[warn] %d lines dropped (over %d lines a second)"):format(l.dropped, logfeed.RATE)) end
    return
  end
  if o.json then
    out(format.json { event = "log", level = l.level, message = l.message, time = l.time })
  else
    out(("%s [%s] %s"):format(tostring(l.time), tostring(l.level), tostring(l.message)))
  end
end

M.logs = {
  run = function(o, p)
    if #o.pos ~= 1 then return usage("logs") end
    local timeout, te = options.ms(o, "timeout", help.default("logs", "timeout"))
    if not timeout then return fail("usage", te) end
    local level = o.level or help.default("logs", "level")
    if not log.is_level(level) then return fail("usage", "--level must be one of " .. log.choices() .. ", got " .. level) end
    local h, entry, addr = open(o, p)
    if not h then return entry end
    local follow = o.follow == true
    if follow then
      -- Lines come as sends to this reserved handle, from the peer only.
      h:expose(logfeed.LINE_HANDLE, function(_, line) print_line(o, line) end,
        { authorize = function(from) return from == entry.key end })
    end
    local answer, code = reach.run(function()
      reach.waiting(("connecting to %s (%s)"):format(o.pos[1], addr))
      return call(h, entry, addr, logfeed.HANDLE, { level = level, follow = follow }, timeout)
    end)
    if not answer then
      h:close()
      return code
    end
    if not answer.ok then
      h:close()
      return reach.print_answer(o, answer)
    end
    local v = peernet.etf.decode(answer.value)
    for _, l in ipairs(type(v) == "table" and type(v.lines) == "table" and v.lines or {}) do print_line(o, l) end
    if not follow then
      h:close()
      return EXIT.ok
    end
    -- Until the link closes (the peer stopped, or revoked the right) or a signal.
    local result = EXIT.ok
    local stop_signals
    local function finish()
      if stop_signals then stop_signals() end
      stop_signals = nil
      uv.stop()
    end
    h:on("disconnected", function(key, reason)
      if key ~= entry.key then return end
      err("the link to ", o.pos[1], " closed (", tostring(reason), ")")
      finish()
    end)
    stop_signals = signals.on_stop(false, function() finish() end)
    if o.json then out(format.json { event = "following", peer = entry.key }) else err("following ", o.pos[1], "'s log") end
    io.stdout:flush()
    uv.run()
    h:close()
    return result
  end,
}

-- ---- console ------------------------------------------------------------

M.CONSOLE_HISTORY = "console_history" -- in the data dir (with lua-readline)
local GONE = "no such console session" -- the device's answer once it closed one

-- The prompt's own messages, on stderr without the command's prefix.
local function say(...)
  io.stdout:flush()
  io.stderr:write(...)
  io.stderr:write("\n")
end

-- The text of .load FILE, bounded as the device bounds a line.
local function load_text(path)
  local f, e = io.open(path, "rb")
  if not f then return nil, tostring(e) end
  local t = f:read(peernet.console.MAX_TEXT + 1) or ""
  f:close()
  if #t > peernet.console.MAX_TEXT then return nil, ("%s: over %d bytes"):format(path, peernet.console.MAX_TEXT) end
  return t
end

-- The reason of a remote failure as text.
local function reason_of(answer)
  local r = peernet.etf.decode(answer.reason)
  return type(r) == "string" and r or format.pretty(r)
end

-- Prints one line's answer; returns nil, or an exit code when the peer is gone.
local function show(o, answer)
  if answer.ok then
    local v = peernet.etf.decode(answer.value, { exact = true })
    local n = type(v) == "table" and math.tointeger(v.n) or 0
    local vals = type(v) == "table" and type(v.v) == "table" and v.v or {}
    local printed = type(v) == "table" and type(v.out) == "string" and v.out or nil
    local cut = type(v) == "table" and v.cut == true
    if o.json then
      local list = {}
      for i = 1, n do list[i] = vals[i] == nil and peernet.null or vals[i] end
      out(format.json { ok = true, values = list, output = printed, cut = cut or nil })
    else
      if printed then io.stdout:write(printed) end
      if cut then say("(print's output was cut: too long for one line's answer)") end
      for i = 1, n do out(format.pretty(vals[i])) end
    end
  elseif answer.kind == peernet.kinds.remote then
    if o.json then out(format.json { ok = false, error = reason_of(answer) })
    else say("error: ", reason_of(answer)) end
  else
    return reach.print_answer(o, answer)
  end
  io.stdout:flush()
  return nil
end

M.console = {
  run = function(o, p)
    if #o.pos ~= 1 then return usage("console") end
    local timeout, te = options.ms(o, "timeout", help.default("console", "timeout"))
    if not timeout then return fail("usage", te) end
    local h, entry, addr = open(o, p)
    if not h then return entry end
    local name = o.pos[1]
    local function start()
      reach.waiting(("connecting to %s (%s)"):format(name, addr))
      local a = call(h, entry, addr, console.HANDLE, { open = true }, timeout)
      reach.waited()
      if not a.ok then return nil, a end
      local v = peernet.etf.decode(a.value)
      if type(v) ~= "table" or type(v.session) ~= "string" then
        return nil, { ok = false, kind = "unreachable", message = "the peer answered something other than a session" }
      end
      return v.session
    end
    local ok, code = task.run(function()
      local sid, refused = start()
      if not sid then return reach.print_answer(o, refused) end
      local tty = uv.guess_handle(0) == "tty"
      if tty then say("Lua on ", name, ", in a sandbox of its own: .load FILE sends a file, .exit or ^D ends") end
      local reader = prompt.new(p.dir .. "/" .. M.CONSOLE_HISTORY)
      local result = EXIT.ok
      while true do
        local line = reader.read(name .. "> ")
        if line == nil or line:match("^%s*%.exit%s*$") or line:match("^%s*%.quit%s*$") then break end
        local text, le = line, nil
        local file = line:match("^%s*%.load%s+(.-)%s*$")
        if file then
          text, le = load_text(file)
        elseif line:match("^%s*%.") then
          text, le = nil, "unknown command " .. line:match("^%s*(%S+)") .. " (there are: .load FILE, .exit)"
        elseif line:match("^%s*$") then
          text = nil
        end
        if le then say(le) end
        if text then
          local answer = call(h, entry, addr, console.HANDLE, { session = sid, line = text }, timeout)
          if not answer.ok and answer.kind == peernet.kinds.remote and reason_of(answer):find(GONE, 1, true) then
            -- Closed on the device (idle, or the link went): a new one, without the old globals.
            say("the session on ", name, " had ended; a new one starts (earlier definitions are gone)")
            local fresh, why = start()
            if not fresh then
              result = reach.print_answer(o, why)
              break
            end
            sid = fresh
            answer = call(h, entry, addr, console.HANDLE, { session = sid, line = text }, timeout)
          end
          local gone = show(o, answer)
          if gone then
            result = gone
            break
          end
        end
      end
      reader.close()
      if result == EXIT.ok then call(h, entry, addr, console.HANDLE, { session = sid, close = true }, timeout) end
      return result
    end)
    h:close()
    if not ok then return fail("failure", tostring(code)) end
    return code
  end,
}

return M
