#!/usr/bin/env bash
# test/bench/orders_instructions.sh <db> — CPU instructions per order of the
# four implementations, counted by valgrind (callgrind) in a single-user
# backend on the bench's database: unlike time, the count does not move with
# the machine's load.  Called by bench_orders.sh when ORDERS_INSTRUCTIONS=1;
# it stops the bench server for the count and starts it again.  Prints one
# line and appends it to $OUT/orders.csv.  ORDERS_INSTRUCTIONS_N (100) orders.
set -u
source "$(dirname "$0")/../lib.sh"
DB=$1
OUT=${OUT:-test/bench/out}
N=${ORDERS_INSTRUCTIONS_N:-100}
command -v valgrind >/dev/null || { echo "instructions: valgrind is not installed (apt-get install valgrind)"; exit 0; }
psql -q -X -d "$DB" -c "CALL bench.cpu_run('elfsofa', 20, 1000)" -c "CALL bench.cpu_run('plain', 20, 1000)" >/dev/null || exit 1
es_stop_server

count() {  # count <impl> <n>: instructions inside CALL statements (30 warm-up orders, then n)
    local opt="" log
    [ "$1" = plpgsql ] || [ "$1" = floor ] && opt="-c plan_cache_mode=force_generic_plan"
    log=$(mktemp)
    chmod 666 "$log"
    printf "SET synchronous_commit = off\nCALL bench.cpu_run('%s', 30, 1000)\nCALL bench.cpu_run('%s', %s, 1000)\n" "$1" "$1" "$2" |
        es_as_server_user valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
            --toggle-collect=ExecuteCallStmt --log-file="$log" \
            "$ES_BINDIR/postgres" --single -D "$ES_TMP/data" -c shared_preload_libraries=elfsofa $opt "$DB" >/dev/null 2>&1
    awk '/Collected/ { gsub(/,/, "", $4); print $4 }' "$log"
    rm -f "$log"
}
per_order() {  # per_order <impl>: (n orders + warm-up) - (warm-up), per order, in thousands
    local a b
    a=$(count "$1" 0); b=$(count "$1" "$N")
    awk -v a="$a" -v b="$b" -v n="$N" 'BEGIN { if (a > 0 && b > a) printf "%.0f", (b - a) / n / 1000; else print 0 }'
}
e=$(per_order elfsofa); p=$(per_order plpgsql); s=$(per_order plain); f=$(per_order floor)
es_as_server_user "$ES_BINDIR/pg_ctl" -D "$ES_TMP/data" -l "$ES_TMP/log/server.log" -w -t 60 start >/dev/null ||
    es_die "bench server did not start again"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
printf '%-24s %8s %8s %8s %8s %9s %9s %9s\n' "k instructions/order" "$e" "$p" "$s" "$f" \
    "$(ratio "$p" "$e")x" "$(ratio "$s" "$e")x" "$(ratio "$f" "$e")x"
echo "k instructions per order (callgrind),1,1000,$e,$p,$s,$f,$(ratio "$p" "$e"),$(ratio "$s" "$e"),$(ratio "$f" "$e")" >>"$OUT/orders.csv"
