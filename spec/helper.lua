-- Loaded by busted before every spec file (see CMakeLists.txt).
-- Gives specs the golden vectors of ../shared/vectors and hex helpers.
local json = require "dkjson"

-- ctest passes where the build and the sources are; default to the
-- usual layout so `lua5.4 /usr/bin/busted --helper=spec/helper.lua` works too.
local src = os.getenv("PN_SOURCE_DIR") or "."
local build = os.getenv("PN_BUILD_DIR") or (src .. "/build")
package.cpath = build .. "/?.so;" .. package.cpath
package.path = src .. "/lua/?.lua;" .. src .. "/lua/?/init.lua;" .. src .. "/spec/?.lua;"
  .. package.path

local H = { source_dir = src, build_dir = build }

-- The wire codecs' test bindings (noise, handshake, envelope, announce,
-- mdns) are a module of their own, build/peernet_wire.so, that user
-- programs never see; specs find them in `peernet` as before.
do
  local peernet = require "peernet"
  for name, sub in pairs(require "peernet_wire") do peernet[name] = sub end
end

local vectors_dir = os.getenv("PN_VECTORS") or (src .. "/../shared/vectors")

function H.vector_file(name)
  local path = vectors_dir .. "/" .. name
  local f = assert(io.open(path, "rb"), "cannot open golden vector file " .. path)
  local text = f:read("a")
  f:close()
  local data, _, err = json.decode(text)
  assert(data, "cannot parse " .. path .. ": " .. tostring(err))
  return data
end

function H.unhex(s)
  assert(#s % 2 == 0, "odd-length hex")
  return (s:gsub("..", function(b) return string.char(tonumber(b, 16)) end))
end

function H.hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

function H.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -m 700 " .. p))
  return p
end

function H.rmdir(p)
  assert(p:match("^/tmp/"), "refusing to remove " .. p)
  os.execute("rm -rf '" .. p .. "'")
end

-- Small shell and file helpers for specs that check files on disk.
function H.sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return (out:gsub("%s+$", ""))
end

function H.q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

function H.write_file(path, data, mode)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  assert(os.execute("chmod " .. (mode or "600") .. " " .. H.q(path)))
end

-- Writes a temp file and renames it over path, as an editor saving a
-- script does: a watcher sees the old file or the new one, never half.
function H.replace_file(path, data)
  local tmp = path .. ".tmp"
  H.write_file(tmp, data)
  assert(os.rename(tmp, path))
end

function H.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

function H.mode_of(path) return H.sh("stat -c %a " .. H.q(path)) end
function H.names_in(dir) return H.sh("ls -A " .. H.q(dir)) end

package.loaded["spec_helper"] = H
_G.H = H
return H
