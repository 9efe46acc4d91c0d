#!/usr/bin/env bash
# Installs circomlibjs 0.1.7 (iden3's JavaScript Poseidon, Baby Jubjub and EdDSA, from npm) under
# DIR, for the tests that check proofmill's rollup signatures and hashes against an
# implementation no one here wrote. Needs node (>= 18) and npm. Prints the directory to pass
# as PROOFMILL_CIRCOMLIB_DIR on the last line. Idempotent.
#   usage: scripts/circomlib-setup.sh DIR
set -euo pipefail
dir=$(mkdir -p "${1:?usage: circomlib-setup.sh DIR}" && cd "$1" && pwd)
command -v node >/dev/null 2>&1 || { echo "circomlib-setup.sh: node is not on PATH" >&2; exit 1; }
if [ ! -f "$dir/node_modules/circomlibjs/package.json" ]; then
  [ -f "$dir/package.json" ] || echo '{ "name": "proofmill-circomlib", "private": true }' > "$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund --silent circomlibjs@0.1.7 >&2)
fi
# Fail here, not in the tests, when the package does not load.
(cd "$dir" && node --input-type=module -e 'const { buildPoseidon } = await import("circomlibjs"); const p = await buildPoseidon(); if (p.F.toString(p([1, 2]), 16) !== "115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a") { console.error("circomlibjs poseidon([1,2]) is not the reference vector"); process.exit(1); }') >&2
echo "$dir"
