-- Hand-made DNS messages that a careless mDNS parser mishandles: pointer
-- loops, long pointer chains, oversized names, lying counts, TXT strings
-- running past their rdata. Used by spec/net/mdns_spec.lua and written out as
-- fuzz seeds by fuzz/gen_mdns_seeds.lua. Each entry: name, bytes, and the
-- error code (peernet.mdns.parse's third result) it must produce, or nil
-- when the message is valid.
local D = {}

function D.header(id, flags, qd, an, ns, ar)
  return string.pack(">I2I2I2I2I2I2", id, flags, qd, an, ns, ar)
end

local function label(s) return string.char(#s) .. s end
function D.name(...)
  local t = {}
  for _, l in ipairs({ ... }) do t[#t + 1] = label(l) end
  return table.concat(t) .. "\0"
end
function D.ptr(off) return string.pack(">I2", 0xC000 | off) end
-- A record of type t with raw rdata.
function D.rr(name, t, ttl, rdata) return name .. string.pack(">I2I2I4s2", t, 1, ttl, rdata) end
function D.q(name, t) return name .. string.pack(">I2I2", t, 1) end

local svc = D.name("_peernet", "_tcp", "local")
local H = D.header

D.cases = {
  -- valid: a PTR whose target is compressed against the question name
  { "compressed_ok", H(0, 0x8400, 1, 1, 0, 0) .. D.q(svc, 12)
      .. D.ptr(12) .. string.pack(">I2I2I4", 12, 1, 4500) .. string.pack(">I2", 7) .. label("inst") .. D.ptr(12) },
  -- a name pointing at itself
  { "ptr_self_loop", H(0, 0, 1, 0, 0, 0) .. D.ptr(12) .. string.pack(">I2I2", 12, 1), "einval" },
  -- two names pointing at each other (the second one forward)
  { "ptr_forward", H(0, 0, 2, 0, 0, 0) .. D.ptr(18) .. string.pack(">I2I2", 12, 1)
      .. D.ptr(12) .. string.pack(">I2I2", 12, 1), "einval" },
  -- a label then a pointer back to the label's own start
  { "ptr_label_loop", H(0, 0, 1, 0, 0, 0) .. label("a") .. D.ptr(12) .. string.pack(">I2I2", 1, 1), "einval" },
  -- a reserved label type (0x40)
  { "label_type_40", H(0, 0, 1, 0, 0, 0) .. "\x41a\0" .. string.pack(">I2I2", 1, 1), "einval" },
  -- counts that claim 65535 records in a 12-byte message
  { "lying_counts", H(0, 0x8400, 0, 0xFFFF, 0xFFFF, 0xFFFF), "einval" },
  -- more records than the parser keeps (65), each a minimal valid one
  { "too_many_records", H(0, 0x8400, 0, 65, 0, 0) .. string.rep("\0" .. string.pack(">I2I2I4s2", 1, 1, 1, "\1\2\3\4"), 65), "elimit" },
  -- TXT: two strings, then one whose length runs past the rdata
  { "txt_ok", H(0, 0x8400, 0, 1, 0, 0) .. D.rr(svc, 16, 1, "\5key=1\3a=b") },
  { "txt_runs_past", H(0, 0x8400, 0, 1, 0, 0) .. D.rr(svc, 16, 1, "\9key=1"), "einval" },
  -- rdata length past the end of the message
  { "rdata_past_end", H(0, 0x8400, 0, 1, 0, 0) .. svc .. string.pack(">I2I2I4I2", 1, 1, 1, 200) .. "\1\2\3\4", "einval" },
  -- an A record of 5 bytes
  { "a_wrong_len", H(0, 0x8400, 0, 1, 0, 0) .. D.rr(svc, 1, 1, "\1\2\3\4\5"), "einval" },
  -- a name of 256 wire bytes (4 labels of 63)
  { "name_too_long", H(0, 0, 1, 0, 0, 0) .. D.name(string.rep("a", 63), string.rep("b", 63), string.rep("c", 63), string.rep("d", 63)) .. string.pack(">I2I2", 1, 1), "etoobig" },
  -- SRV whose target runs past its rdata
  { "srv_target_past_rdata", H(0, 0x8400, 0, 1, 0, 0) .. D.rr(svc, 33, 1, string.pack(">I2I2I2", 0, 0, 80) .. "\4ab"), "einval" },
  -- trailing bytes after the last record
  { "trailing", H(0, 0, 1, 0, 0, 0) .. D.q(svc, 12) .. "x", "einval" },
  { "empty", "", "einval" },
  { "header_only_query", H(7, 0, 0, 0, 0, 0) },
}

-- A message whose one A record is named by a chain of hops pointers: an
-- unknown-type record's rdata holds "end" and hops-1 pointers each to the
-- one before, and the A record's name points at the last.
function D.chain(hops)
  local rdata, prev, at = D.name("end"), 23, 28 -- header 12, root name 1, fixed 10
  for _ = 1, hops - 1 do
    rdata = rdata .. D.ptr(prev)
    prev, at = at, at + 2
  end
  return H(0, 0x8400, 0, 2, 0, 0) .. D.rr("\0", 0xFF00, 1, rdata)
      .. D.ptr(prev) .. string.pack(">I2I2I4s2", 1, 1, 1, "\1\2\3\4")
end
D.cases[#D.cases + 1] = { "chain_16", D.chain(16) }
D.cases[#D.cases + 1] = { "chain_17", D.chain(17), "elimit" }

return D
