-- Shell commands for the install, package and rock specs: exit status and
-- what they printed (both streams). Tools run without the suite's
-- LD_PRELOAD (an ASan build preloads the sanitizer into lua5.4, and git,
-- tar or dpkg would then abort on their own leaks); {asan = true} keeps it
-- for a command that loads an instrumented peernet.so into lua5.4.
local S = {}

function S.run(cmd, opts)
  local prefix = (opts and opts.asan) and "" or "unset LD_PRELOAD; "
  local p = assert(io.popen("(" .. prefix .. cmd .. ") 2>&1"))
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out
end

-- Runs cmd, which must exit 0; returns what it printed.
function S.must(cmd, opts)
  local code, out = S.run(cmd, opts)
  assert(code == 0, cmd .. " exited " .. tostring(code) .. ":\n" .. out)
  return out
end

-- The one version, src/core/version.h's PN_VERSION.
function S.version()
  return H.read_file(H.source_dir .. "/src/core/version.h"):match('#define PN_VERSION "([%d.]+)"')
end

return S
