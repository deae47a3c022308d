#!/usr/bin/env bash
# test/bench/bench_analytics.sh — reports over a shop with 1M orders (~1.5M
# lines) across 13 months: sales_summary for a month and a year (partition
# pruning: the month report must cost a fraction of the year), recommend over
# all lines, restock suggestions, customer insights, health().  Run by
# test/bench/run.sh (make bench, BENCH_ONLY=analytics).  ANALYTICS_RUNS sets
# the repetitions per report (median printed).
set -u
cd "$(dirname "$0")/../.."
DB=elfsofa_bench_analytics
RUNS=${ANALYTICS_RUNS:-5}

psql -X -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" || exit 1
psql -X -q -v ON_ERROR_STOP=1 -d $DB -c "CREATE EXTENSION elfsofa" || exit 1
t0=$(date +%s.%N)
psql -X -q -v ON_ERROR_STOP=1 -d $DB -f test/bench/analytics_gen.sql || exit 1
t1=$(date +%s.%N)
psql -X -q -At -d $DB -c "SELECT format('generated %s orders, %s lines, %s partitions each; database %s',
    (SELECT count(*) FROM elfsofa.orders), (SELECT count(*) FROM elfsofa.order_lines),
    (SELECT count(*) FROM pg_inherits WHERE inhparent = 'elfsofa.orders'::regclass),
    pg_size_pretty(pg_database_size(current_database())))"
printf 'generation took %.1f s\n' "$(echo "$t1 - $t0" | bc)"
echo
echo "analytics reports (median of $RUNS runs each)"
psql -X -q -v ON_ERROR_STOP=1 -v runs="$RUNS" -d $DB -f test/bench/analytics_run.sql || exit 1
psql -X -q -c "DROP DATABASE IF EXISTS $DB"
