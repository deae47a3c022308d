#!/usr/bin/env bash
# archive_rows killed mid-run (pg_terminate_backend), then rerun: every row
# ends up exactly once, in the source or in elfsofa_archive, never both.
# The batched procedure keeps the batches committed before the kill; the
# single-transaction function rolls back whole.
source "$(dirname "$0")/../tap.sh"
DB=es_archive_kill
N=400000

q -c "DROP DATABASE IF EXISTS $DB" >/dev/null
q -c "CREATE DATABASE $DB" >/dev/null
q -d $DB -c "CREATE EXTENSION elfsofa" >/dev/null
q -d $DB <<SQL >/dev/null
CREATE TABLE public.kill_src (id bigint PRIMARY KEY, at timestamptz NOT NULL, payload text NOT NULL);
INSERT INTO public.kill_src SELECT i, now() - interval '30 days' + i * interval '1 second', md5(i::text)
  FROM generate_series(1, $N) i;
SQL
sum_want=$(q -d $DB -c "SELECT sum(id) || ':' || md5(string_agg(payload, '' ORDER BY id)) FROM public.kill_src")

# waits until a backend running archive_rows reports progress; prints its pid
wait_progress() {
    local pid=""
    for _ in $(seq 1 200); do
        pid=$(q -d $DB -c "SELECT pid FROM pg_stat_activity WHERE datname = '$DB' AND query LIKE 'elfsofa.archive_rows %rows moved%' LIMIT 1")
        [ -n "$pid" ] && { echo "$pid"; return 0; }
        sleep 0.05
    done
    return 1
}

check_once() {   # check_once <label>: counts and content over source + archive
    local got
    got=$(q -d $DB -c "SELECT count(*) || ':' || count(DISTINCT id) FROM (SELECT id FROM public.kill_src UNION ALL SELECT id FROM elfsofa_archive.kill_src) x")
    tap_is "$got" "$N:$N" "$1: $N rows, each exactly once"
}

# 1. the batched procedure, killed mid-run
q -d $DB -c "CREATE TABLE IF NOT EXISTS elfsofa_archive.kill_src (LIKE public.kill_src)" >/dev/null
psql -X -q -d $DB -c "CALL elfsofa.archive_rows_batched('public.kill_src', 'at', '1 day', 500)" >"$ES_TMP/log/archive_kill_1.out" 2>&1 &
bg=$!
pid=$(wait_progress); rc=$?
tap_ok $rc "progress of the running archive is visible in pg_stat_activity"
progress=$(q -d $DB -c "SELECT query FROM pg_stat_activity WHERE pid = ${pid:-0}")
echo "# progress seen: $progress"
q -d $DB -c "SELECT pg_terminate_backend(${pid:-0})" >/dev/null
wait $bg
moved_before=$(q -d $DB -c "SELECT count(*) FROM elfsofa_archive.kill_src")
left_before=$(q -d $DB -c "SELECT count(*) FROM public.kill_src")
echo "# killed after moving $moved_before rows ($left_before left)"
tap_ok $([ "$moved_before" -gt 0 ] && [ "$left_before" -gt 0 ] && echo 0 || echo 1) "killed mid-run: committed batches stayed, the rest did not move"
check_once "after killing the procedure"

# 2. the single-transaction function, killed mid-run: rolls back whole
psql -X -q -d $DB -c "SELECT elfsofa.archive_rows('public.kill_src', 'at', '1 day', 100)" >"$ES_TMP/log/archive_kill_2.out" 2>&1 &
bg=$!
pid=$(wait_progress)
sleep 0.2
q -d $DB -c "SELECT pg_terminate_backend(${pid:-0})" >/dev/null
wait $bg
moved_after=$(q -d $DB -c "SELECT count(*) FROM elfsofa_archive.kill_src")
tap_is "$moved_after" "$moved_before" "killed function rolled back whole: archive unchanged"
check_once "after killing the function"

# 3. rerun to completion
rest=$(q -d $DB -c "SELECT elfsofa.archive_rows('public.kill_src', 'at', '1 day')")
tap_is "$rest" "$left_before" "rerun moves exactly the rows that were left"
tap_is "$(q -d $DB -c "SELECT count(*) FROM public.kill_src")" "0" "source empty after the rerun"
check_once "after the rerun"
tap_is "$(q -d $DB -c "SELECT sum(id) || ':' || md5(string_agg(payload, '' ORDER BY id)) FROM elfsofa_archive.kill_src")" "$sum_want" "archived rows identical to the originals"

q -c "DROP DATABASE $DB" >/dev/null
tap_done
