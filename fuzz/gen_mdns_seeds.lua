-- Writes the hand-made seeds of fuzz/corpus/mdns/ (the nasty messages of
-- spec/support/dns_nasty.lua). The other seeds there are real packets
-- captured from python3-zeroconf and from our own responder. Run from the
-- repository root:  lua5.4 fuzz/gen_mdns_seeds.lua
package.path = "spec/support/?.lua;" .. package.path
local D = require "dns_nasty"
for _, c in ipairs(D.cases) do
  local f = assert(io.open("fuzz/corpus/mdns/nasty_" .. c[1], "wb"))
  f:write(c[2])
  f:close()
end
