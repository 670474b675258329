---@meta peernet
-- LuaLS (lua-language-server) definitions of the `peernet` table that
-- handler scripts and run scripts see (docs/scripts.md, docs/values.md).
-- Add the folder holding this file to `workspace.library`. Installed in
-- share/peernet-host/types; spec/cli/types_spec.lua checks every function
-- docs/scripts.md lists is defined here.

---A peer: a public key (64 hex digits, base64 or base64url) or a label of the trust list.
---@alias peernet.peer string

---Where a failed call ended (src/core/reason.h's PN_KINDS).
---@alias peernet.kind "remote"|"timeout"|"closed"|"local"|"undecodable"

---@alias peernet.event "connected"|"disconnected"|"discovered"|"drained"

---An Erlang atom (`peernet.atom("ok")`).
---@class peernet.atom

---An Erlang tuple: a list-like table marked as a tuple.
---@class peernet.tuple: table

---An integer beyond int64, exact; compares with <, <=, ==, no arithmetic.
---@class peernet.bigint

---@class peernet.timer
local timer = {}
---Stops the timer; a tick already running finishes.
function timer:cancel() end

---@class peernet.peer_info
---@field key string the peer's key, 64 hex characters
---@field status string "connected", "connecting", "disconnected", ...
---@field trusted boolean
---@field addr string? HOST:PORT, when known
---@field last_seen integer Unix seconds, 0 = never
---@field connections integer
---@field settling boolean

---@class peernet.expose_opts
---@field authorize? fun(from: string, name: string): boolean may the caller `from` use this handle (cannot wait)

---@class peernet.call_opts
---@field timeout? integer milliseconds (default 5000)

---@class peernet.log
local log = {}
---@param fmt string string.format format
---@param ... any
function log.debug(fmt, ...) end
---@param fmt string
---@param ... any
function log.info(fmt, ...) end
---@param fmt string
---@param ... any
function log.warn(fmt, ...) end
---@param fmt string
---@param ... any
function log.error(fmt, ...) end

---Admin modules behind the built-in `beam_admin` handle (BeamDist-style).
---@class peernet.admin
local admin = {}
---Registers a table of functions as admin module `name`.
---@param name string
---@param module table<string, function>
function admin.register(name, module) end
---Exposes `beam_admin`; it runs any admin function, so give it a predicate.
---@param opts {authorize: fun(from: string, name: string): boolean}
function admin.expose(opts) end
---Calls `module.fn(table.unpack(args))` on `peer` (waits).
---@param peer peernet.peer
---@param module string
---@param fn string
---@param args any[]
---@return any value
---@return string? reason
---@return peernet.kind? kind
function admin.call(peer, module, fn, args) end
---Starts `module.fn(...)` on `peer` in the background (waits for its `ok`).
---@param peer peernet.peer
---@param module string
---@param fn string
---@param args any[]
---@return any value
---@return string? reason
---@return peernet.kind? kind
function admin.cast(peer, module, fn, args) end

---The ETF codec (docs/values.md).
---@class peernet.etf
local etf = {}
---Encodes a value as ETF bytes (with the version byte).
---@param value any
---@param opts? {max: integer}
---@return string? bytes
---@return string? err
function etf.encode(value, opts) end
---Decodes ETF bytes to a value.
---@param bytes string
---@param opts? table
---@return any value
---@return string? err
function etf.decode(bytes, opts) end
---@param s string|integer decimal digits
---@return peernet.bigint
function etf.bigint(s) end
---Marks a table as a map (an empty table is otherwise a list).
---@param t? table
---@return table
function etf.map(t) end
---@param v any
---@return boolean
function etf.is_map(v) end

---Bounded Lua patterns (the matcher handler scripts get), for run scripts.
---@class peernet.pattern
---@field steps_max integer the step budget of one call
local pattern = {}
---@param s string
---@param p string
---@param init? integer
---@param plain? boolean
---@return integer? start
---@return integer? finish
---@return any ...
function pattern.find(s, p, init, plain) end
---@param s string
---@param p string
---@param init? integer
---@return any ...
function pattern.match(s, p, init) end
---@param s string
---@param p string
---@return fun(): any
function pattern.gmatch(s, p) end
---@param s string
---@param p string
---@param repl string|table|function
---@param n? integer
---@return string
---@return integer
function pattern.gsub(s, p, repl, n) end

---ARGS text (the CLI's `call` arguments) in the C sandbox.
---@class peernet.args
---@field MAX_TEXT integer
local args = {}
---@param text string
---@return boolean ok
---@return any value_or_error
function args.parse(text) end
---@param text string
---@return string? bytes ETF with the version byte
---@return string? err
function args.encode(text) end

---A settings file written as Lua data (serve's host.lua): checked like
---config.lua (a regular file of yours, not writable by others) and
---evaluated in the sandbox of ARGS.
---@class peernet.datafile
---@field MAX_BYTES integer
local datafile = {}
---@param path string
---@return boolean ok false: no file (value nil), or an error
---@return any value_or_error
---@return string? text the file's text, when ok
function datafile.load(path) end

---@class peernet
---@field null userdata Erlang nil inside containers
---@field log peernet.log
---@field admin peernet.admin
---@field etf peernet.etf
---@field pattern peernet.pattern run scripts (handler scripts' string functions are these)
---@field args peernet.args run scripts
---@field datafile peernet.datafile run scripts
---@field host table run scripts: peernet.host.new, the host object (docs/host.md)
---@field keys table run scripts: key generation, parsing, text forms
---@field trust table run scripts: peernet.trust.open, the trust list
---@field runtime table run scripts: the script runtime
---@field frame table run scripts: the frame codec
---@field version string this peernet-host's version
---@field protocol_version integer
---@field sodium_version string
---@field ms_max integer
---@field addr_max integer
---@field has_systemd boolean
peernet = {}

---Exposes a handle other peers may call; a handler returns a value, or `nil, reason`.
---@param name string
---@param handler fun(from: string, args: any): any, any
---@param opts? peernet.expose_opts
function peernet.expose(name, handler, opts) end

---Revokes a handle this script exposed.
---@param name string
---@return boolean
function peernet.revoke(name) end

---Calls `name` on `peer` and waits for the reply.
---@param peer peernet.peer
---@param name string
---@param args? any
---@param opts? peernet.call_opts
---@return any value the `V` of `{ok, V}`; nil on failure
---@return string? reason
---@return peernet.kind? kind
function peernet.call(peer, name, args, opts) end

---Sends to `name` on `peer`; no reply, nothing queued when not connected.
---@param peer peernet.peer
---@param name string
---@param args? any
---@return true? sent
---@return string? reason "not_connected", or "busy" while more than half of max_outbuf waits
---@return peernet.kind? kind
function peernet.send(peer, name, args) end

---Waits until a send to `peer` would not answer busy (the queue down to a quarter of max_outbuf).
---@param peer peernet.peer
---@param opts? {timeout?: integer} ms, default 5000
---@return true? drained
---@return string? reason "timeout" or "closed"
---@return peernet.kind? kind
function peernet.drain(peer, opts) end

---Connects to `peer` (the trust list's address, or `addr`) and waits for the handshake.
---@param peer peernet.peer
---@param addr? string HOST:PORT
---@return true? ok
---@return string? err
---@return peernet.kind? kind
function peernet.connect(peer, addr) end

---@return peernet.peer_info[]
function peernet.peers() end

---This host's own key, 64 hex characters.
---@return string
function peernet.self() end

---A key (hex, base64) or a trust list label to the key in hex.
---@param s string
---@return string? key
---@return string? err
function peernet.resolve(s) end

---Runs `fn` on each event (`reason` is given for "disconnected" only).
---@param event peernet.event
---@param fn fun(key: string, reason?: string)
function peernet.on(event, fn) end

---Waits `ms` milliseconds (the host goes on serving).
---@param ms integer
function peernet.sleep(ms) end

---Runs `fn` once after `ms` milliseconds.
---@param ms integer
---@param fn function
---@return peernet.timer
function peernet.after(ms, fn) end

---Runs `fn` every `ms` milliseconds (at least 10).
---@param ms integer
---@param fn function
---@return peernet.timer
function peernet.every(ms, fn) end

---@param s string
---@return peernet.atom
function peernet.atom(s) end

---@param ... any
---@return peernet.tuple
function peernet.tuple(...) end

---@param s string|integer decimal digits
---@return peernet.bigint
function peernet.bigint(s) end

---@param v any
---@return boolean
function peernet.is_atom(v) end

---@param v any
---@return boolean
function peernet.is_tuple(v) end

---@param v any
---@return boolean
function peernet.is_bigint(v) end

---Run scripts: a public key drawn as a QR code (rows of booleans).
---@param text string
---@return table? matrix
---@return string? err
function peernet.qr(text) end

---Tells the service manager about this process (sd_notify(3), e.g. "READY=1").
---@param state string
---@return boolean told false without a manager or without libsystemd
function peernet.notify(state) end

---The load generator behind `peernet-host bench` (run scripts): keeps
---opts.inflight calls (or sends) to opts.handle of opts.peer, a connected
---key, for opts.duration_ms, then calls cb once with the report (ok,
---errors, timeouts, closed, seconds, per_s, and for calls min_us, p50_us,
---p99_us, p999_us, max_us, mean_us; error when it stopped early).
---@param host table a peernet.host that stays open until cb has run
---@param opts {peer: string, handle: string, args: string, inflight?: integer, duration_ms?: integer, timeout_ms?: integer, send?: boolean}
---@param cb fun(report: table)
function peernet.loadgen(host, opts, cb) end

return peernet
