#!/usr/bin/env sh
# Installs schemathesis (PyPI) into a virtual environment at DIR and prints the path of its
# executable, for PROOFMILL_SCHEMATHESIS: the property-based API test runs it against the
# server's own /openapi.json. Idempotent. Needs python3 with venv.
#
#   usage: scripts/schemathesis-setup.sh [DIR]        (default: .schemathesis)
set -eu

VERSION="4.32.5"
DIR="${1:-.schemathesis}"
EXE="$DIR/bin/schemathesis"

if [ ! -x "$EXE" ] || ! "$EXE" --version 2>/dev/null | grep -q "$VERSION"; then
    python3 -m venv "$DIR" >&2
    "$DIR/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION" >&2
fi
if [ ! -x "$EXE" ]; then
    echo "schemathesis-setup: $EXE missing after install" >&2
    exit 1
fi
cd "$(dirname "$EXE")" && echo "$(pwd)/schemathesis"
