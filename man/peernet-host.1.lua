-- peernet-host(1): docs/cli.md, with the sections a man page has around it.
-- man/mkman.lua turns it into roff; spec/cli/install_spec.lua checks that
-- every command, option and environment variable is in it.
return {
  name = "peernet-host",
  section = 1,
  package = "peernet-host",
  manual = "User Commands",
  summary = "run and program a PeerNet peer in Lua",
  sources = { "docs/cli.md" },
  parts = {
    { text = "## Synopsis" },
    { source = "docs/cli.md", ["until"] = "## The data dir" },
    { text = [[
## Description

**peernet-host** runs one PeerNet peer: an X25519 key is its address, a
Noise XX handshake proves it, and it talks to the Elixir PeerNet library
byte for byte. Handlers are sandboxed Lua scripts in the data dir's
`handlers/` (see **peernet-scripts**(7)); `run` runs the operator's own
trusted scripts. The sections below are docs/cli.md.
]] },
    { source = "docs/cli.md", from = "## The data dir",
      rename = { ["The data dir"] = "Files", ["Exit codes"] = "Exit status" },
      drop = { ["Where the commands live"] = true } },
    { text = [[
## Environment

| variable | what |
|---|---|
| `PEERNET_HOME` | the data dir when `--data-dir` is not given |
| `XDG_DATA_HOME` | the data dir is `$XDG_DATA_HOME/peernet` when neither is given |
| `PEERNET_DEBUG` | set (to anything): the host's debug and info lines on stderr too |
| `PEERNET_LOCK_WAIT_MS` | how long a trust list writer waits for another (default 10000) |
| `PEERNET_TEST_STOP_AFTER_TEMP` | a test hook: a writer of that file stops itself after its temp file |

## Service

The package installs **peernet-host.service** (not enabled): `serve` as the
system user `peernet` with the data dir `/var/lib/peernet`. Enable it with
`systemctl enable --now peernet-host`; `systemctl reload peernet-host`
sends SIGHUP. From a login shell, reach the running service through its
control socket as its user:

    sudo -u peernet peernet-host --data-dir /var/lib/peernet call PEER HANDLE

## See also

**peernet-scripts**(7), **systemd.exec**(5), docs/cli.md, docs/host.md and
docs/values.md in /usr/share/doc/peernet-host.
]] },
  },
}
