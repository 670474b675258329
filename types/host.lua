---@meta host
-- LuaLS definitions of `host`, the capabilities a handler script is
-- granted in <data_dir>/config.lua (docs/scripts.md, "Capabilities"), and
-- a console session by its key's right there (peers.KEY.console = {read=,
-- write=, exec=}, docs/remote.md). Anything not granted raises "not
-- permitted: ...".

---@class host.exec_result
---@field status integer? exit status
---@field signal integer? the signal that ended it
---@field stdout string at most 1 MiB
---@field stderr string at most 1 MiB
---@field truncated boolean an output was cut at 1 MiB

---@class host
host = {}

---Runs a granted program directly (no shell) and waits for it (in a
---console, the line waits: its answer comes when the program ends).
---@param argv string[] the program by absolute path, then its arguments
---@param opts? {timeout: integer} milliseconds (default 10000)
---@return host.exec_result? result
---@return string? err "timeout", or why it could not run
---@return string? kind "timeout"
function host.exec(argv, opts) end

---Reads a granted file.
---@param path string
---@return string? contents
---@return string? err
function host.read(path) end

---Writes a granted file (never through a symbolic link in the last component).
---@param path string
---@param data string
---@return true? ok
---@return string? err
function host.write(path, data) end

return host
