-- The texts of --help, help COMMAND and --version.
local uv = require "luv"
local peernet = require "peernet"

local M = {}

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
  "options for every command:",
  "  --data-dir DIR  identity, trust list, handlers (default: $PEERNET_HOME,",
  "                  else $XDG_DATA_HOME/peernet, else ~/.local/share/peernet)",
  "  --json          print data as JSON (docs/cli.md says how values map)",
  "  --help          help for the command",
  "  --version       print the version and the libraries it runs on",
  "",
  "ARGS is a Lua literal evaluated in an empty sandbox, e.g. '{room = \"kitchen\"}';",
  "atom\"x\", tuple(...), null, map{} and bigint\"...\" write the other Erlang terms.",
  "",
  "call, send, peers and status go through the control socket of a host",
  "running on the data dir (serve or run), else start a short-lived host.",
  "",
  "trust add/rm and init take turns on the trust list: each waits up to",
  "$PEERNET_LOCK_WAIT_MS (default 10000) for another writer, then exits 1.",
  "",
  "The host logs warnings and errors on stderr; with PEERNET_DEBUG set in the",
  "environment, its info and debug lines too (every connection and why it closed).",
  "",
  "exit codes:",
  "  0  success",
  "  1  failure (data dir, identity, files, a script that does not load or run,",
  "     is not yours alone, stdout closed, or a reply that cannot be decoded",
  "     here: it holds a pid, a ref, a fun)",
  "  2  usage error (unknown command or option, bad ARGS or key)",
  "  3  the peer answered {error, Reason} (Reason is printed)",
  "  4  timeout: no reply or no connection within --timeout",
  "  5  peer unreachable: not in the trust list, no address, cannot connect,",
  "     or the connection closed before the reply",
}

-- The whole help: commands (a table name -> command) in order (their names).
function M.text(commands, order)
  local lines = {}
  for _, l in ipairs(INTRO) do lines[#lines + 1] = l end
  for _, name in ipairs(order) do
    lines[#lines + 1] = ("  %-8s %s"):format(name, commands[name].summary)
  end
  for _, l in ipairs(OUTRO) do lines[#lines + 1] = l end
  return table.concat(lines, "\n")
end

-- `peernet-host help COMMAND`.
function M.usage(cmd)
  return "usage: peernet-host " .. cmd.usage .. "\n\n" .. cmd.summary
end

-- `peernet-host COMMAND --help`.
function M.command(cmd)
  return M.usage(cmd) .. "\n\nsee docs/cli.md, and peernet-host --help for exit codes"
end

function M.version()
  return ("peernet-host %s (protocol v%d; %s, libsodium %s, libuv %s)"):format(peernet.version,
    peernet.protocol_version, _VERSION, peernet.sodium_version, uv.version_string())
end

return M
