-- Writes fuzz/corpus/mdns_host/ (input format in fuzz/fuzz_mdns_host.c):
-- the packets of fuzz/corpus/mdns/ as single datagrams from the mDNS port
-- and as legacy unicast queries, and a few sequences a LAN produces: an
-- announcement then its goodbye, a PTR alone then the SRV/TXT/A it asks
-- for, a query with known answers, and queries naming the harness host's
-- own instance, host name and service enumeration (its key comes from the
-- target's fixed secret). Run from the repository root after a build:
--     lua5.4 fuzz/gen_mdns_host_seeds.lua
package.path = "spec/support/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local peernet = require "peernet"
peernet.mdns = require("peernet_wire").mdns -- the wire codecs are a module of their own
local D = require "dns_nasty"

local function read(name)
  local f = assert(io.open("fuzz/corpus/mdns/" .. name, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
local function chunk(flags, bytes) return string.char(flags) .. string.pack(">s2", bytes) end
local function write(name, bytes)
  local f = assert(io.open("fuzz/corpus/mdns_host/" .. name, "wb"))
  f:write(bytes)
  f:close()
end

local MDNS_LO, MDNS_LAN, LEGACY, TURN = 0x01, 0x03, 0x00, 0x08
for _, n in ipairs { "peernet_announce_eth", "peernet_announce_lo", "peernet_goodbye",
  "peernet_query", "zeroconf_announce", "zeroconf_answer_nsec", "zeroconf_goodbye",
  "zeroconf_query_known_answers", "zeroconf_query_authority" } do
  write("mcast_" .. n, chunk(MDNS_LO | TURN, read(n)))
end
write("legacy_peernet_query", chunk(LEGACY, read("peernet_query")))
write("legacy_zeroconf_query", chunk(LEGACY, read("zeroconf_query_known_answers")))
write("announce_then_goodbye", chunk(MDNS_LAN, read("zeroconf_announce"))
  .. chunk(MDNS_LAN | TURN, read("zeroconf_goodbye")))
write("nsec_answer_then_goodbye", chunk(MDNS_LO, read("zeroconf_answer_nsec"))
  .. chunk(MDNS_LO, read("zeroconf_goodbye")))

-- A PTR alone, then the SRV + TXT, then the A record, in three packets.
local H, name = D.header, D.name
local svc = name("_peernet", "_tcp", "local")
local inst = name("box", "_peernet", "_tcp", "local")
local tgt = name("box-host", "local")
local key = string.rep("ab", 32)
local txt = string.char(3) .. "v=1" .. string.char(4 + #key) .. "key=" .. key
write("resolve_in_steps",
  chunk(MDNS_LAN, H(0, 0x8400, 0, 1, 0, 0) .. D.rr(svc, 12, 4500, inst))
  .. chunk(MDNS_LAN, H(0, 0x8400, 0, 2, 0, 0) .. D.rr(inst, 33, 120, string.pack(">I2I2I2", 0, 0, 4040) .. tgt)
    .. D.rr(inst, 16, 4500, txt))
  .. chunk(MDNS_LAN | TURN, H(0, 0x8400, 0, 1, 0, 0) .. D.rr(tgt, 1, 120, "\192\0\2\9")))
for _, c in ipairs(D.cases) do
  write("nasty_" .. c[1], chunk(MDNS_LO, c[2]))
end

-- The harness host: secret 32 x 0x42, default names.
local hex = peernet.keys.from_secret(string.rep("\x42", 32)):public_hex()
local own = "peernet-" .. hex:sub(1, 16) .. "._peernet._tcp.local"
local own_host = "pn-" .. hex:sub(1, 16) .. ".local"
local function query(qs, known)
  return assert(peernet.mdns.build { id = 77, questions = qs, records = known })
end
write("ask_own_instance", chunk(MDNS_LO, query { { name = own, type = "SRV" }, { name = own, type = "TXT" } })
  .. chunk(LEGACY, query { { name = own, type = "ANY" } }))
write("ask_own_host", chunk(MDNS_LAN, query { { name = own_host, type = "A" } })
  .. chunk(LEGACY, query { { name = own_host, type = "AAAA" } }))
write("ask_services", chunk(MDNS_LO | TURN, query { { name = "_services._dns-sd._udp.local", type = "PTR" } })
  .. chunk(LEGACY, query { { name = "_services._dns-sd._udp.local", type = "PTR" } }))
write("known_answer", chunk(MDNS_LO, query({ { name = "_peernet._tcp.local", type = "PTR" } },
  { { name = "_peernet._tcp.local", type = "PTR", ttl = 4000, target = own } })))
