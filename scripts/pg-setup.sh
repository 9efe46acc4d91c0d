#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the cluster-mode tests and prints its admin URL
# (for PROOFMILL_TEST_DATABASE_URL). Each test creates its own database on it. It also writes
# DIR/ctl, which the tests run as `DIR/ctl stop|start|restart` to restart PostgreSQL under
# load. Idempotent: a server already running from DIR is reused.
#
#   usage: scripts/pg-setup.sh [DIR] [PORT]      (default: target/pg 54329)
#
# Needs PostgreSQL's server binaries (Debian: `apt-get install postgresql`). initdb refuses to
# run as root, so as root the server runs as the `postgres` user the Debian package creates.
set -euo pipefail

DIR="${1:-target/pg}"
PORT="${2:-54329}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"

BIN=""
for candidate in "$(command -v pg_ctl 2>/dev/null || true)" /usr/lib/postgresql/*/bin/pg_ctl; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
        BIN="$(dirname "$(readlink -f "$candidate")")"
        break
    fi
done
if [ -z "$BIN" ]; then
    echo "pg-setup: PostgreSQL server binaries not found (Debian: apt-get install postgresql)" >&2
    exit 1
fi

AS=()
SERVER_DIR="$DIR"
if [ "$(id -u)" = 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /bin/sh postgres
    fi
    AS=(runuser -u postgres --)
    chown postgres "$DIR"
    # The server user must reach its directory: a checkout under /root is not reachable.
    if ! "${AS[@]}" test -w "$DIR"; then
        SERVER_DIR="/tmp/proofmill-pg-$PORT"
        mkdir -p "$SERVER_DIR"
        chown postgres "$SERVER_DIR"
        chmod 700 "$SERVER_DIR"
    fi
fi

DATA="$SERVER_DIR/data"
# The socket goes to /tmp: a path under a deep checkout can pass the 107-byte socket limit
# (the tests connect over TCP).
OPTS="-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c shared_buffers=64MB"
cat > "$DIR/ctl" <<CTL
#!/usr/bin/env bash
# stop | start | restart the test PostgreSQL server (written by scripts/pg-setup.sh).
set -euo pipefail
exec ${AS[*]} "$BIN/pg_ctl" -D "$DATA" -l "$SERVER_DIR/server.log" -w -t 60 -m fast -o "$OPTS" "\$1"
CTL
chmod +x "$DIR/ctl"

if [ ! -f "$DATA/PG_VERSION" ]; then
    "${AS[@]}" "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-sync >&2
fi
if ! "${AS[@]}" "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    "$DIR/ctl" start >&2
fi
echo "postgres://postgres@127.0.0.1:$PORT/postgres"
