#!/usr/bin/env bash
# test/bench/run.sh — `make bench`: start a throwaway server tuned like a small
# production box and run every test/bench/bench_*.sh against it.  Each bench
# prints its own table with ratios measured in this same run.
# BENCH_ONLY="orders audit" runs a subset (BENCH_ONLY=hot: bench_hot.sh, a flash sale
# on one SKU); BENCH_SECONDS sets pgbench duration.
set -u
source "$(dirname "$0")/../lib.sh"

ES_PORT=${ES_PORT:-55440}
ES_TMP=${ES_TMP:-/tmp/elfsofa-bench-$ES_PORT}
ES_PRIVATE_TREE=${ES_PRIVATE_TREE:-1}
export ES_PORT ES_TMP BENCH_SECONDS=${BENCH_SECONDS:-10}

es_install_packages
es_fresh_tmp
es_build_install
trap es_stop_server EXIT
es_start_server <<'CONF'
shared_buffers = '512MB'
max_wal_size = '4GB'
checkpoint_timeout = '30min'
synchronous_commit = on
log_autovacuum_min_duration = 0
CONF
cd "$ES_ROOT"
mkdir -p test/bench/out
rc=0
for b in $(ls test/bench/bench_*.sh 2>/dev/null | sort); do
    name=$(basename "$b" .sh); name=${name#bench_}
    if [ -n "${BENCH_ONLY:-}" ] && ! grep -qw "$name" <<<"$BENCH_ONLY"; then continue; fi
    es_say "bench $name"
    bash "$b" || { echo "bench $name failed"; rc=1; }
done
exit $rc
