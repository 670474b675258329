-- Shell commands for the network-namespace specs. The ASan suite preloads
-- the sanitizer runtime: ip and sysctl must not get it (their own leaks
-- would abort them), the host processes must.
local M = {}

function M.run(cmd)
  local p = io.popen("env -u LD_PRELOAD " .. cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

function M.must(cmd)
  local ok, out = M.run(cmd)
  assert(ok, cmd .. ": " .. out)
end

-- Why this process cannot make namespaces, or nil: tried for real, once.
do
  local probe = string.format("pnchk%d", math.random(1, 1e9))
  local ok, out = M.run("ip netns add " .. probe)
  if ok then
    M.run("ip netns del " .. probe)
  else
    M.refused = "network namespaces refused here (need root and iproute2): " .. out:gsub("%s+$", "")
  end
end

return M
