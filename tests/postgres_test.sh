#!/usr/bin/env bash
# The PostgreSQL variants of the registry and server tests (names containing "Postgres") against a
# throwaway cluster: initdb + pg_ctl in a temporary folder, listening only on 127.0.0.1 on a free port with
# its socket in that folder, trust authentication, no fsync (nothing in it is kept). The cluster is always
# stopped and the folder removed.
#   usage: postgres_test.sh path/to/vigil_tests [gtest filter, default *Postgres*]
# Exits 77 (ctest: skipped) when no PostgreSQL server binaries are installed (Debian: postgresql).
set -euo pipefail
tests=${1:?usage: postgres_test.sh path/to/vigil_tests [filter]}
filter=${2:-*Postgres*}

bindir=""
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then bindir=$d; break; fi
done
if [ -z "$bindir" ] && command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
  bindir=$(dirname "$(command -v initdb)")
fi
if [ -z "$bindir" ]; then
  echo "postgres_test: skipped: no PostgreSQL server binaries (initdb, pg_ctl) found;" \
       "install the postgresql package (bash scripts/deps.sh does) to run the PostgreSQL tests"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vigil_pg.XXXXXX")
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  # initdb refuses to run as root: the cluster belongs to the postgres system user.
  if ! id postgres >/dev/null 2>&1; then
    echo "postgres_test: running as root needs the 'postgres' system user (the postgresql package creates it)"
    rm -rf "$tmp"
    exit 1
  fi
  chown postgres: "$tmp"
  as_owner=(runuser -u postgres --)
fi
cleanup() {
  if [ -f "$tmp/data/postmaster.pid" ]; then
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! "${as_owner[@]}" "$bindir/initdb" -D "$tmp/data" -U vigil -A trust -E UTF8 --locale=C --no-sync \
    >"$tmp/initdb.log" 2>&1; then
  echo "postgres_test: initdb failed:"
  cat "$tmp/initdb.log"
  exit 1
fi

# A free port: try a few random ones (pg_ctl fails at once when the port is taken).
port=""
for attempt in 1 2 3 4 5 6 7 8; do
  candidate=$((20000 + RANDOM % 40000))
  if "${as_owner[@]}" "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 -o \
      "-c listen_addresses=127.0.0.1 -c port=$candidate -c unix_socket_directories=$tmp -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >"$tmp/pg_ctl.log" 2>&1; then
    port=$candidate
    break
  fi
done
if [ -z "$port" ]; then
  echo "postgres_test: the PostgreSQL server did not start:"
  cat "$tmp/pg_ctl.log" "$tmp/server.log" 2>/dev/null | tail -n 30
  exit 1
fi

export VIGIL_TEST_POSTGRES_URL="postgresql://vigil@127.0.0.1:$port/postgres"
echo "postgres_test: PostgreSQL $("$bindir/pg_ctl" --version | awk '{print $3}') at $VIGIL_TEST_POSTGRES_URL"
set +e
"$tests" --gtest_filter="$filter" --gtest_color=no 2>&1 | tee "$tmp/tests.log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  echo "postgres_test: tests failed; the server's log ends:"
  tail -n 30 "$tmp/server.log" || true
  exit "$rc"
fi
# With the server running nothing may be skipped (a skip here means the variants did not really run).
if grep -q '^\[  SKIPPED \]' "$tmp/tests.log"; then
  echo "postgres_test: some PostgreSQL tests were skipped although a server was running"
  exit 1
fi
if ! grep -q '^\[  PASSED  \] [1-9]' "$tmp/tests.log"; then
  echo "postgres_test: no test matched --gtest_filter=$filter"
  exit 1
fi
