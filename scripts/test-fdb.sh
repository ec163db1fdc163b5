#!/usr/bin/env bash
# Runs the store conformance suite against a real FoundationDB cluster (the FoundationDB
# engine, store/src/fdb.rs). Needs:
#   * the FoundationDB 7.3 client library, libfdb_c.so, to link and run the tests, found by
#     the dynamic linker (ldconfig) or in the directory FDB_CLIENT_LIB_PATH names;
#   * a running cluster, named by STEAD_FDB_CLUSTER_FILE (path of a readable cluster file).
# The suite clears and writes keys under the tuple prefix ("stead-conformance",) only.
# Exit status: 2 when a prerequisite is missing, else cargo test's.
# Extra arguments go to cargo test (e.g. a test name filter).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

have_libfdb() {
    if [[ -n "${FDB_CLIENT_LIB_PATH:-}" && -e "${FDB_CLIENT_LIB_PATH}/libfdb_c.so" ]]; then
        return 0
    fi
    local ldconfig
    ldconfig="$(command -v ldconfig || true)"
    [[ -z "$ldconfig" && -x /sbin/ldconfig ]] && ldconfig=/sbin/ldconfig
    [[ -z "$ldconfig" ]] && return 1
    # No grep -q: with pipefail, ldconfig killed by SIGPIPE would read as "not found".
    "$ldconfig" -p 2>/dev/null | grep 'libfdb_c\.so' >/dev/null
}

if ! have_libfdb; then
    cat >&2 <<'MSG'
test-fdb.sh: libfdb_c.so (the FoundationDB client library) was not found
(looked in `ldconfig -p` and in $FDB_CLIENT_LIB_PATH).

Install the FoundationDB 7.3 client package (the engine uses C API version 730) from the
FoundationDB releases, https://github.com/apple/foundationdb/releases (pick the newest 7.3.x):
  Debian/Ubuntu:  foundationdb-clients_7.3.<x>-1_amd64.deb    (sudo dpkg -i ...)
  RHEL/Fedora:    foundationdb-clients-7.3.<x>-1.el7.x86_64.rpm (sudo rpm -i ...)
or unpack libfdb_c.so somewhere and set FDB_CLIENT_LIB_PATH to that directory.

You also need a running FoundationDB 7.3 cluster, for example:
  * the foundationdb-server_7.3.<x>-1_amd64.deb package of the same release (starts a
    one-process cluster whose cluster file is /etc/foundationdb/fdb.cluster), or
  * the official image, on the host network so that the address in its cluster file works:
      docker run -d --name fdb --network host -e FDB_NETWORKING_MODE=host foundationdb/foundationdb:7.3.<x>
      docker exec fdb fdbcli --exec "configure new single memory"
      docker exec fdb cat /var/fdb/fdb.cluster > fdb.cluster
Then run:  STEAD_FDB_CLUSTER_FILE=/path/to/fdb.cluster scripts/test-fdb.sh
MSG
    exit 2
fi

if [[ -z "${STEAD_FDB_CLUSTER_FILE:-}" ]]; then
    echo "test-fdb.sh: set STEAD_FDB_CLUSTER_FILE to the cluster file of a running FoundationDB 7.3 cluster" \
        "(for a local server package: /etc/foundationdb/fdb.cluster)" >&2
    exit 2
fi
if [[ ! -f "$STEAD_FDB_CLUSTER_FILE" || ! -r "$STEAD_FDB_CLUSTER_FILE" ]]; then
    echo "test-fdb.sh: STEAD_FDB_CLUSTER_FILE=$STEAD_FDB_CLUSTER_FILE is not a readable file" >&2
    exit 2
fi

if [[ -n "${FDB_CLIENT_LIB_PATH:-}" ]]; then
    # foundationdb-sys' build script adds FDB_CLIENT_LIB_PATH to the link search path, but it
    # declares no rerun-if-env-changed, so a cached run can keep an older value: LIBRARY_PATH
    # tells the linker too. LD_LIBRARY_PATH lets the test binary load the library.
    export FDB_CLIENT_LIB_PATH
    export LIBRARY_PATH="${FDB_CLIENT_LIB_PATH}${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export LD_LIBRARY_PATH="${FDB_CLIENT_LIB_PATH}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export STEAD_FDB_CLUSTER_FILE

exec cargo test -p stead-testkit --features fdb --test conformance_fdb "$@"
