-- Valid addresses of an exact length, for the specs of the address bound
-- (peernet.addr_max: longer ones are refused, never shortened).
local A = {}

-- "aaa…a.aaa…a.lan:40400", len bytes in all: labels of at most 51 letters.
function A.name(len)
  local port, tld = ":40400", ".lan"
  local body = len - #port - #tld
  local unit = ("a"):rep(50) .. "."
  local host = unit:rep(body // #unit + 1):sub(1, body)
  if host:sub(-1) == "." then host = host:sub(1, -2) .. "b" end
  return host .. tld .. port
end

-- The longest bracketed form: a 45-byte IPv6 text, a 15-byte zone, a 5-digit port.
A.v6_zone = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%abcdefghijklmno]:65535"

return A
