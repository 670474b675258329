-- The commands, their usage lines and options with their defaults: the one
-- source of `--help`, `help COMMAND`, the option parser
-- (lua/peernet/cli/options.lua) and the table in docs/cli.md "Options"
-- (spec/cli/help_spec.lua checks that table against this one, both ways).
--
-- A command is { name, usage, summary, options = { OPTION... } }; an
-- OPTION is { name, arg = "METAVAR" (a value; absent: a flag), default =
-- value the command uses when the option is absent (a number or text; nil:
-- see `unset`), unset = "what absent means" (when there is no single
-- value), text = "what it does" }. Adding an option is adding a row here:
-- the parser, the help text and the docs check follow.
local uv = require "luv"
local peernet = require "peernet"

local M = {}

-- Options every command takes.
M.GLOBAL = {
  { name = "data-dir", arg = "DIR", text = "identity, trust list, handlers",
    unset = "$PEERNET_HOME, else $XDG_DATA_HOME/peernet, else ~/.local/share/peernet" },
  { name = "json", text = "print data (and failures) as one JSON object per line", unset = "text" },
  { name = "help", text = "this help", unset = "off" },
}

local TIMEOUT_TEXT = "bounds connecting and the reply together, in ms"

-- In the order `--help` lists them.
M.COMMANDS = {
  { name = "init", usage = "init",
    summary = "create the data dir and this host's identity (keeps an existing one)" },
  { name = "id", usage = "id [--qr]",
    summary = "print this host's public key (--qr: as a QR code)",
    options = {
      { name = "qr", text = "draw the key as a QR code, black on white on any terminal", unset = "off" },
    } },
  { name = "trust", usage = "trust add|rm|ls ...",
    summary = "manage the trust list (peernet-host trust add --help, ...)",
    subcommands = { "add", "rm", "ls" } },
  { name = "trust add", usage = "trust add KEY [--label L] [--addr HOST:PORT]",
    summary = "trust a peer, or update its label or address (a unique prefix of a discovered or refused key shows that key, to trust in full)",
    options = {
      { name = "label", arg = "L", text = "a name for the peer: 1..64 of A-Za-z0-9._-, unique", unset = "none" },
      { name = "addr", arg = "HOST:PORT", text = "where to dial it", unset = "none (LAN discovery may find one)" },
    } },
  { name = "trust rm", usage = "trust rm KEY|LABEL",
    summary = "stop trusting a peer (a running host drops its connection at once)" },
  { name = "trust ls", usage = "trust ls", summary = "list the trust list" },
  { name = "serve",
    usage = "serve [--handlers DIR] [--listen ADDR:PORT] [--no-discovery] [--name NAME] [--log-level L]",
    summary = "run this host: listen, follow the trust list, serve handler scripts",
    options = {
      { name = "handlers", arg = "DIR", text = "the handler scripts' directory", unset = "<data dir>/handlers" },
      { name = "listen", arg = "ADDR:PORT", text = "where to accept peers (every interface, IPv4 and IPv6)",
        default = "[::]:4040" },
      { name = "no-discovery", text = "no UDP announce, no mDNS, no network monitor", unset = "discovery on" },
      { name = "name", arg = "NAME", text = "the mDNS instance name (one DNS label, 1..63 bytes)",
        unset = "host.lua's mdns_instance, else derived from the key" },
      { name = "log-level", arg = "L", text = "debug, info, warn or error",
        unset = "host.lua's log_level, else info" },
    } },
  { name = "config", usage = "config",
    summary = "print serve's effective settings (the running host's, or host.lua over the defaults)" },
  { name = "run", usage = "run [--listen ADDR:PORT] SCRIPT.lua [ARGS...]",
    summary = "run a trusted Lua script with the peernet API and luv",
    stop = true,
    options = {
      { name = "listen", arg = "ADDR:PORT", text = "accept peers there too", unset = "does not listen" },
    } },
  { name = "call", usage = "call PEER HANDLE [ARGS] [--addr HOST:PORT] [--timeout MS]",
    summary = "call HANDLE on PEER with ARGS and print the reply",
    options = {
      { name = "addr", arg = "HOST:PORT", text = "dial this address", unset = "the trust list's address" },
      { name = "timeout", arg = "MS", text = TIMEOUT_TEXT, default = 5000 },
    } },
  { name = "send", usage = "send PEER HANDLE [ARGS] [--addr HOST:PORT] [--timeout MS]",
    summary = "send ARGS to HANDLE on PEER (no reply)",
    options = {
      { name = "addr", arg = "HOST:PORT", text = "dial this address", unset = "the trust list's address" },
      { name = "timeout", arg = "MS", text = "bounds connecting and writing, in ms", default = 5000 },
    } },
  { name = "push", usage = "push PEER [DIR|FILE...] [--dry-run] [--delete] [--addr HOST:PORT] [--timeout MS]",
    summary = "send handler scripts to PEER, which checks, writes and loads them (needs its deploy right)",
    options = {
      { name = "dry-run", text = "check the files on PEER, write nothing", unset = "off" },
      { name = "delete", text = "also remove PEER's scripts that are not among the files sent", unset = "off" },
      { name = "addr", arg = "HOST:PORT", text = "dial this address", unset = "the trust list's address" },
      { name = "timeout", arg = "MS", text = TIMEOUT_TEXT, default = 10000 },
    } },
  { name = "logs", usage = "logs PEER [--follow] [--level L] [--addr HOST:PORT] [--timeout MS]",
    summary = "print PEER's recent log lines, and with --follow the new ones (needs its logs right)",
    options = {
      { name = "follow", text = "keep printing new lines until either side goes", unset = "off" },
      { name = "level", arg = "L", text = "the least level shown: debug, info, warn or error", default = "info" },
      { name = "addr", arg = "HOST:PORT", text = "dial this address", unset = "the trust list's address" },
      { name = "timeout", arg = "MS", text = TIMEOUT_TEXT, default = 5000 },
    } },
  { name = "console", usage = "console PEER [--addr HOST:PORT] [--timeout MS]",
    summary = "a Lua prompt whose lines run on PEER in a sandbox of their own (needs its console right)",
    options = {
      { name = "addr", arg = "HOST:PORT", text = "dial this address", unset = "the trust list's address" },
      { name = "timeout", arg = "MS", text = "bounds connecting and each line's reply together, in ms", default = 5000 },
    } },
  { name = "peers", usage = "peers [--timeout MS]",
    summary = "list the peers, trusted and discovered, and their status",
    options = {
      { name = "timeout", arg = "MS", text = "with no host running: how long to wait for the handshakes",
        default = 3000 },
    } },
  { name = "status", usage = "status", summary = "show whether a host runs on this data dir, and its state" },
  { name = "check", usage = "check SCRIPT.lua...",
    summary = "load handler scripts in the sandbox and report errors and clashes (for CI)" },
  { name = "bench",
    usage = "bench PEER HANDLE [ARGS] [--inflight N] [--duration S] [--size B] [--send] [--addr HOST:PORT] [--timeout MS]",
    summary = "load a handler of PEER: calls/s and latency percentiles",
    options = {
      { name = "inflight", arg = "N", text = "calls kept in flight, 1..65536", default = 1 },
      { name = "duration", arg = "S", text = "how long to load it, in seconds", default = 5 },
      { name = "size", arg = "B", text = "send a string of B bytes as ARGS", unset = "ARGS, else nil" },
      { name = "send", text = "one-way sends instead of calls, paced by the link's queue", unset = "calls" },
      { name = "addr", arg = "HOST:PORT", text = "dial this address", unset = "the trust list's address" },
      { name = "timeout", arg = "MS", text = TIMEOUT_TEXT, default = 5000 },
    } },
  { name = "test", usage = "test [SPEC_DIR]",
    summary = "run the *_spec.lua files of SPEC_DIR (default ./spec) with peernet.testing, no network" },
}

local by_name = {}
for _, c in ipairs(M.COMMANDS) do by_name[c.name] = c end

function M.find(name) return by_name[name] end

-- The default of option opt of command name (a number or text).
function M.default(name, opt)
  for _, o in ipairs(by_name[name].options or {}) do
    if o.name == opt then return o.default end
  end
  error("no option --" .. opt .. " for " .. name)
end

-- What the parser needs of command name: { opts = {name = "value" | "flag"}, stop }.
-- A group (trust) takes the options of all its subcommands.
function M.spec(name)
  local c = by_name[name]
  local s = { opts = {}, stop = c.stop }
  local function add(cmd)
    for _, o in ipairs(cmd.options or {}) do s.opts[o.name] = o.arg and "value" or "flag" end
  end
  add(c)
  for _, sub in ipairs(c.subcommands or {}) do add(by_name[name .. " " .. sub]) end
  return s
end

-- "--timeout MS" / "--qr".
local function option_label(o) return "--" .. o.name .. (o.arg and " " .. o.arg or "") end
M.option_label = option_label

-- The default as the help and the docs show it.
function M.default_text(o)
  if o.default ~= nil then return tostring(o.default) end
  return o.unset
end

local function option_lines(lines, list)
  local width = 0
  for _, o in ipairs(list) do width = math.max(width, #option_label(o)) end
  for _, o in ipairs(list) do
    local d = M.default_text(o)
    lines[#lines + 1] = ("  %-" .. width .. "s  %s%s"):format(option_label(o), o.text,
      d and (" (default: " .. d .. ")") or "")
  end
end

local INTRO = {
  "usage: peernet-host [--data-dir DIR] COMMAND [ARGS] [--json] [--help]",
  "",
  "Runs one PeerNet peer, programmed in Lua. Peers are named by public key",
  "(64 hex digits, or base64) or by their label in the trust list.",
  "",
  "commands:",
}

local OUTRO = {
  "",
  "ARGS is a Lua literal evaluated in an empty sandbox, e.g. '{room = \"kitchen\"}';",
  "text is quoted ('\"on\"'); atom\"x\", tuple(...), null, map{} and bigint\"...\"",
  "write the other Erlang terms.",
  "",
  "call, send, peers and status go through the control socket of a host",
  "running on the data dir (serve or run), else start a short-lived host.",
  "",
  "trust add/rm and init take turns on the trust list: each waits up to",
  "$PEERNET_LOCK_WAIT_MS (default 10000) for another writer, then exits 1.",
  "",
  "serve logs at info and above on stderr (--log-level, or log_level in host.lua;",
  "PEERNET_DEBUG set means debug); other commands log warnings and errors.",
  "",
  "exit codes:",
  "  0  success",
  "  1  failure (data dir, identity, files, a script that does not load or run,",
  "     is not yours alone, stdout closed, or a reply that cannot be decoded",
  "     here: it holds a pid, a ref, a fun)",
  "  2  usage error (unknown command or option, bad ARGS, not a key)",
  "  3  the peer answered {error, Reason} (Reason is printed)",
  "  4  timeout: no reply or no connection within --timeout",
  "  5  peer unreachable: not in the trust list, no address, cannot connect,",
  "     or the connection closed before the reply",
  "",
  "peernet-host COMMAND --help: its options and their defaults; docs/cli.md: all of it.",
}

-- The whole help.
function M.text()
  local lines = {}
  for _, l in ipairs(INTRO) do lines[#lines + 1] = l end
  for _, c in ipairs(M.COMMANDS) do
    if not c.name:find(" ") then lines[#lines + 1] = ("  %-8s %s"):format(c.name, c.summary) end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "options for every command:"
  local list = { table.unpack(M.GLOBAL) }
  list[#list + 1] = { name = "version", text = "print the version and the libraries it runs on (--json: as JSON)" }
  option_lines(lines, list)
  for _, l in ipairs(OUTRO) do lines[#lines + 1] = l end
  return table.concat(lines, "\n")
end

-- `peernet-host COMMAND --help` and `peernet-host help COMMAND`.
function M.command(name)
  local c = by_name[name]
  local lines = { "usage: peernet-host " .. c.usage .. " [--json] [--data-dir DIR]", "", c.summary }
  for _, sub in ipairs(c.subcommands or {}) do
    lines[#lines + 1] = "  peernet-host " .. by_name[name .. " " .. sub].usage
  end
  if c.options then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "options:"
    option_lines(lines, c.options)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "options for every command:"
  option_lines(lines, M.GLOBAL)
  lines[#lines + 1] = ""
  lines[#lines + 1] = "exit codes: peernet-host --help; everything: docs/cli.md"
  return table.concat(lines, "\n")
end

-- The nearest command name to a mistyped one (edit distance at most 2, or
-- a prefix), else nil.
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

function M.suggest(word)
  local best, best_d
  for _, c in ipairs(M.COMMANDS) do
    if not c.name:find(" ") then
      local d = distance(word, c.name)
      if #word >= 2 and c.name:sub(1, #word) == word then d = math.min(d, 1) end
      if d <= 2 and d < #c.name and (not best_d or d < best_d) then best, best_d = c.name, d end
    end
  end
  return best
end

function M.version()
  return ("peernet-host %s (protocol v%d; %s, libsodium %s, libuv %s)"):format(peernet.version,
    peernet.protocol_version, _VERSION, peernet.sodium_version, uv.version_string())
end

function M.version_table()
  return { version = peernet.version, protocol = peernet.protocol_version, lua = _VERSION,
    libsodium = peernet.sodium_version, libuv = uv.version_string() }
end

return M
