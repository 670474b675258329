-- serve's reserved handles (docs/remote.md): peernet.deploy,
-- peernet.logs and peernet.console, for the keys config.lua's peers table gives the right.
-- Every use is logged at info, every refusal too (once per key and handle
-- per log_window: a stranger's calls cannot fill the log).
local console = require "peernet.cli.console"
local deploy = require "peernet.cli.deploy"
local log = require "peernet.cli.log"
local logfeed = require "peernet.cli.logfeed"
local rights = require "peernet.cli.rights"
local uv = require "luv"

local M = {}

-- The handle of each right (a new right is a row here and in rights.RIGHTS).
M.HANDLES = { [deploy.HANDLE] = "deploy", [logfeed.HANDLE] = "logs", [console.HANDLE] = "console" }

local function summary(report)
  local parts = {}
  for _, r in ipairs(report) do parts[#parts + 1] = r.status .. " " .. r.name end
  return #parts > 0 and table.concat(parts, ", ") or "no files"
end

-- Exposes the handles on h. ctx: p (the data dir's paths), dir (the
-- handler directory), rt (the runtime or nil), logger, window_ms.
-- Returns push(level, message) for every log line and stop(key) when
-- key's link closes (it stops following and ends key's console sessions).
function M.serve(h, ctx)
  local logger = ctx.logger
  local r = rights.new { config = ctx.p.config, trust = ctx.p.trust, log = logger.log }
  local feed = logfeed.new(h, function(key) return r.get(key, "logs") == true end)
  local refused_at, refused_n = {}, 0
  local REFUSED_KEEP = 1024 -- key and handle pairs remembered; past it the memory starts over
  local function authorize(from, name)
    local right = M.HANDLES[name]
    if r.get(from, right) then return true end
    local k, now = from .. name, uv.now()
    if not refused_at[k] or now - refused_at[k] >= ctx.window_ms then
      if not refused_at[k] then refused_n = refused_n + 1 end
      if refused_n > REFUSED_KEEP then refused_at, refused_n = {}, 1 end
      refused_at[k] = now
      logger.log("info", ("refused %s from %s: no %s right (peers in %s)"):format(name, r.who(from), right, ctx.p.config))
    end
    return false
  end
  h:expose(deploy.HANDLE, function(from, args)
    local sub = r.get(from, "deploy")
    local report, why = deploy.push({ dir = ctx.dir, config = uv.fs_stat(ctx.p.config) and ctx.p.config or nil,
      rt = ctx.rt }, args, sub ~= true and sub or nil)
    local dry = type(args) == "table" and args.dry_run == true
    if not report then
      logger.log("info", ("push%s from %s refused: %s"):format(dry and " (dry run)" or "", r.who(from), why))
      return nil, why
    end
    logger.log("info", ("push%s from %s: %s"):format(dry and " (dry run)" or "", r.who(from), summary(report)))
    return report
  end, { authorize = authorize })
  h:expose(logfeed.HANDLE, function(from, args)
    local level = type(args) == "table" and args.level or log.DEFAULT
    if not log.is_level(level) then return nil, "level must be one of " .. log.choices() end
    local follow = type(args) == "table" and args.follow == true
    logger.log("info", ("log %s by %s"):format(follow and "followed" or "read", r.who(from)))
    local lines = feed.backlog(level)
    if follow then
      local ok, why = feed.follow(from, level)
      if not ok then return nil, why end
    end
    return { lines = lines, follow = follow }
  end, { authorize = authorize })
  local sessions = console.new { log = logger.log, who = r.who, config = ctx.p.config,
    grants = function(key) return r.get(key, "console") end }
  h:expose(console.HANDLE, sessions.handle, { authorize = authorize })
  return { push = feed.push, stop = function(key)
    feed.stop(key)
    sessions.stop(key)
  end }
end

return M
