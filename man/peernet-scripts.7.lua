-- peernet-scripts(7): docs/scripts.md, the handler scripts' API, the
-- sandbox, grants and admin operations. man/mkman.lua turns it into roff.
return {
  name = "peernet-scripts",
  section = 7,
  package = "peernet-host",
  manual = "Miscellaneous Information Manual",
  summary = "handler scripts, run scripts and admin operations of peernet-host",
  sources = { "docs/scripts.md" },
  parts = {
    { text = "## Description" },
    { source = "docs/scripts.md" },
    { text = [[
## Editor support

The `---@meta` definitions of everything a script sees (`peernet`, `host`)
are in `/usr/share/peernet-host/types`: add that folder to
lua-language-server's `workspace.library`.

## See also

**peernet-host**(1), docs/scripts.md and docs/values.md in
/usr/share/doc/peernet-host.
]] },
  },
}
