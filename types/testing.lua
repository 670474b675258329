---@meta peernet.testing
-- LuaLS definitions of `require "peernet.testing"`, the module specs use
-- to test handler scripts without a network (docs/testing.md).

---@class peernet.testing.sent
---@field what "call"|"send"
---@field to string the peer's hex key
---@field name string the handle
---@field args any
---@field timeout integer the call's timeout in ms (0: the default)

---@class peernet.testing.pending
local pending = {}
---@return boolean answered
function pending:done() end
---Raises while the call has not been answered.
---@return any value
---@return any reason
---@return string? kind
function pending:result() end

---@class peernet.testing.load_opts
---@field config? string|false the grants (config.lua); default dir/../config.lua when it exists
---@field grants? string the text of a config.lua for this test only
---@field trust? string a trust list, for labels
---@field strict? boolean false: keep going when a script does not load

---@class peernet.testing.device
---@field self string the device's own key
---@field sent peernet.testing.sent[] every call and send the scripts made
---@field logs string[] the runtime's log lines, "level message"
---@field errors string[] errors raised by stubs
---@field report table[] rt:load_dir's report
local device = {}

---Calls the handle as peer `from` would over a link.
---@param from string a hex key
---@param name string
---@param args? any
---@return any value
---@return any reason
---@return string? kind
function device:call(from, name, args) end

---Starts a call that may wait (on the virtual clock or a stub).
---@param from string
---@param name string
---@param args? any
---@return peernet.testing.pending
function device:start(from, name, args) end

---@param from string
---@param name string
---@param args? any
function device:send(from, name, args) end

---@param name "connected"|"disconnected"|"discovered"
---@param key string
---@param detail? string disconnected: why
function device:event(name, key, detail) end

---Moves the virtual clock by ms, firing after/every/sleep in order.
---@param ms integer
---@return integer fired
function device:advance(ms) end

---@return integer ms on the virtual clock
function device:now() end

---Answers the scripts' calls (and sends) to peer's handle.
---@param peer string
---@param name string
---@param answer any|fun(args: any, sent: peernet.testing.sent): any, any?
---@return peernet.testing.device
function device:stub(peer, name, answer) end

---@param peer string
---@param name? string
---@return peernet.testing.sent[]
function device:sent_to(peer, name) end

---@param pattern string a Lua pattern
---@return string? line
function device:logged(pattern) end

function device:close() end

---@class peernet.testing
---@field timeout table a stub's answer: the call times out
---@field closed table a stub's answer: the link closes before the reply
local testing = {}

---Loads a handler directory into a sandboxed runtime with no socket.
---@param dir string
---@param opts? peernet.testing.load_opts
---@return peernet.testing.device
function testing.load(dir, opts) end

---@return string key a fresh hex key
function testing.key() end

return testing
