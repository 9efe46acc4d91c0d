#!/usr/bin/env bash
# Installs Foundry's anvil (a local Ethereum node) and cast (its command-line client) from the npm
# packages `@foundry-rs/anvil` and `@foundry-rs/cast` under DIR, and links the native executables
# into DIR/bin. Prints that directory (to put on PATH) as the last line. Idempotent; once
# installed, `anvil` and `cast` run offline.
#   usage: scripts/anvil-setup.sh DIR
#
# How the packages ship their binaries: `@foundry-rs/<tool>` holds only a Node wrapper (bin.mjs)
# and lists one `@foundry-rs/<tool>-<os>-<arch>` package per platform as an optional dependency;
# npm installs the one matching this machine, whose bin/<tool> is the native, statically built
# executable. Their postinstall script only downloads that same binary when the optional
# dependency was skipped, which needs the network (and npm >= 11 does not run it unless
# approved), so it is skipped here and the platform package is required instead. DIR/bin links
# straight to the native executable rather than to the Node wrapper: the wrapper runs the binary
# as a child process, so killing the wrapper's pid would leave a background anvil running.
set -euo pipefail
version=1.7.1
dir=$(mkdir -p "${1:?usage: anvil-setup.sh DIR}" && cd "$1" && pwd)
platform=$(node -p '({linux: "linux", darwin: "darwin"})[process.platform] + "-" + ({x64: "amd64", arm64: "arm64"})[process.arch]')
case "$platform" in
  linux-amd64 | linux-arm64 | darwin-amd64 | darwin-arm64) ;;
  *) echo "anvil-setup: no Foundry npm binaries for $(uname -sm)" >&2; exit 1 ;;
esac
installed() {
  local tool
  for tool in anvil cast; do
    grep -qs "\"version\": \"$version\"" "$dir/node_modules/@foundry-rs/$tool-$platform/package.json" || return 1
    [ -x "$dir/node_modules/@foundry-rs/$tool-$platform/bin/$tool" ] || return 1
  done
}
if ! installed; then
  echo "anvil-setup: installing @foundry-rs/anvil@$version and @foundry-rs/cast@$version under $dir" >&2
  [ -f "$dir/package.json" ] || echo '{"private": true}' > "$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund --silent --ignore-scripts --include=optional \
    "@foundry-rs/anvil@$version" "@foundry-rs/cast@$version" >&2)
  installed || {
    echo "anvil-setup: npm did not install @foundry-rs/{anvil,cast}-$platform (optional dependencies disabled?)" >&2
    exit 1
  }
fi
mkdir -p "$dir/bin"
for tool in anvil cast; do
  ln -sfn "../node_modules/@foundry-rs/$tool-$platform/bin/$tool" "$dir/bin/$tool"
  tool_version=$("$dir/bin/$tool" --version)
  echo "${tool_version%%$'\n'*}" >&2
done
echo "$dir/bin"
