-- <data_dir>/config.lua: what the operator grants handler scripts.
-- Keys are globs over a script's path in the handler directory.
return {
  ["light.lua"] = {
    write = { "/tmp/peernet-demo/light" }, -- host.write may touch this file only
  },
}
