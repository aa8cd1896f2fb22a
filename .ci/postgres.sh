# Sourced by .ci/run: start a throwaway PostgreSQL server for tests/test_database.py and export
# BAYESCLV_TEST_POSTGRES_URL. Debian's `postgresql` package is installed when missing (as root);
# the server lives in a fresh temporary folder on a free loopback port and is stopped and removed
# when the calling shell exits, so a second run on the same machine starts from scratch.

start_test_postgres() {
    if [ -n "${BAYESCLV_TEST_POSTGRES_URL:-}" ]; then
        return 0  # the caller brought a server
    fi
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
                || echo "warning: could not install postgresql" >&2
        fi
    fi
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "warning: no PostgreSQL server here; the PostgreSQL database tests will be skipped" >&2
        return 0
    fi
    local as_server=()
    BAYESCLV_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/bayesclv-pg.XXXXXX")
    if [ "$(id -u)" = 0 ]; then  # initdb refuses to run as root
        chown postgres: "$BAYESCLV_PG_DIR"
        as_server=(runuser -u postgres --)
    fi
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${as_server[@]}" "$bin/initdb" -D "$BAYESCLV_PG_DIR/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
    "${as_server[@]}" "$bin/pg_ctl" -D "$BAYESCLV_PG_DIR/data" -l "$BAYESCLV_PG_DIR/server.log" -w -s \
        -o "-p $port -k $BAYESCLV_PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off" start
    BAYESCLV_PG_CTL="$bin/pg_ctl"
    BAYESCLV_PG_AS=("${as_server[@]}")
    trap stop_test_postgres EXIT
    "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres bayesclv_test
    export BAYESCLV_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/bayesclv_test"
    echo "PostgreSQL test server: $BAYESCLV_TEST_POSTGRES_URL" >&2
}

stop_test_postgres() {
    if [ -n "${BAYESCLV_PG_DIR:-}" ] && [ -d "$BAYESCLV_PG_DIR" ]; then
        "${BAYESCLV_PG_AS[@]}" "$BAYESCLV_PG_CTL" -D "$BAYESCLV_PG_DIR/data" -m fast -w -s stop || true
        rm -rf "$BAYESCLV_PG_DIR"
    fi
}
