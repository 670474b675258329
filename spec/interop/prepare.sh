#!/usr/bin/env bash
# ctest fixture of the interop specs (spec/interop/*_spec.lua): a compiled
# copy of the reference Elixir library in the build folder, made once per
# ctest run. The reference itself (../shared/reference/peer_net) is
# read-only in CI, so it is copied; a copy whose sources match is reused
# (mix then recompiles nothing).
#   spec/interop/prepare.sh REFERENCE_DIR BUILD_DIR
set -euo pipefail
ref=$1
out=$2/peer_net
home=$2/peer_net-home

if ! command -v mix >/dev/null 2>&1; then
  echo "interop: Elixir is not installed; scripts/test installs it" \
       "(apt-get install elixir erlang-dev erlang-crypto erlang-inets erlang-parsetools" \
       "erlang-tools erlang-xmerl erlang-eunit erlang-ssl)" >&2
  exit 1
fi
if [ ! -f "$ref/mix.exs" ]; then
  echo "interop: no reference library at $ref" >&2
  exit 1
fi

# What the copy was made from: the sources that mix compiles.
sums() { (cd "$1" && find mix.exs lib -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }
want=$(sums "$ref")
if [ ! -f "$out/.pn-source" ] || [ "$(cat "$out/.pn-source")" != "$want" ]; then
  rm -rf "$out"
  cp -r "$ref" "$out"
  chmod -R u+w "$out"
  echo "$want" > "$out/.pn-source"
  echo "interop: copied $ref to $out"
fi

# Elixir writes under HOME and MIX_HOME; no Hex (the library has no deps).
mkdir -p "$home"
cd "$out"
HOME=$home MIX_HOME=$home/mix MIX_ENV=test mix compile
echo "interop: reference compiled in $out ($(elixir --version | tail -1))"
