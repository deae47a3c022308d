#!/usr/bin/env bash
# Rate limits under concurrency: parallel clients sharing one bucket get exactly
# max_requests tokens between them, in shared memory and in the table store;
# api_guard holds a user to the limit across connections; a full shared-memory
# table evicts idle buckets, else hands new buckets to the table store.
source "$(dirname "$0")/../tap.sh"
DB=elfsofa_sec_rl
psql -X -q -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
q -d $DB -f "$ES_ROOT/test/supabase_roles.sql" >/dev/null
q -d $DB -c "SET client_min_messages = warning; CREATE EXTENSION elfsofa; CREATE TABLE rl_results (store text, allowed boolean); GRANT INSERT ON rl_results TO authenticated"
q -d $DB -c "SELECT elfsofa.rate_limit_reset()" >/dev/null

for store in auto table; do
    cat >"$ES_TMP/rl_$store.sql" <<SQL
SET elfsofa.rate_limit_store = '$store';
INSERT INTO rl_results SELECT '$store', elfsofa.rate_limit('concurrent-$store', 100, '1 hour');
SQL
    # 4 clients x 60 requests, each its own transaction
    pgbench -n -c 4 -j 4 -t 60 -f "$ES_TMP/rl_$store.sql" $DB >"$ES_TMP/rl_$store.log" 2>&1
    tap_ok $? "pgbench ran 4 clients against store $store"
    tap_is "$(q -d $DB -c "SELECT count(*) FILTER (WHERE allowed) || '/' || count(*) FROM rl_results WHERE store = '$store'")" \
        "100/240" "store $store: 4 parallel clients got exactly 100 of 240 requests through a 100-token bucket"
done

# api_guard, as PostgREST runs it, for one user on 4 connections: 30 per minute
cat >"$ES_TMP/rl_guard.sql" <<'SQL'
BEGIN;
SELECT set_config('request.jwt.claims', '{"role":"authenticated","sub":"c0000000-0000-4000-8000-00000000000c"}', true);
SET LOCAL elfsofa.rate_limit_per_minute = 30;
SET LOCAL ROLE authenticated;
DO $$
BEGIN
    PERFORM elfsofa.api_guard();
    INSERT INTO public.rl_results VALUES ('guard', true);
EXCEPTION WHEN SQLSTATE 'PT429' THEN
    INSERT INTO public.rl_results VALUES ('guard', false);
END
$$;
COMMIT;
SQL
pgbench -n -c 4 -j 4 -t 20 -f "$ES_TMP/rl_guard.sql" $DB >"$ES_TMP/rl_guard.log" 2>&1
tap_ok $? "pgbench ran 4 connections of one user through api_guard"
allowed=$(q -d $DB -c "SELECT count(*) FILTER (WHERE allowed) FROM rl_results WHERE store = 'guard'")
# 30 tokens, plus at most one more refilled (one per 2 s) while the run lasts
tap_ok $([ "$allowed" -ge 30 ] && [ "$allowed" -le 31 ] && echo 0 || echo 1) \
    "api_guard let 30 (or 31 after a refill) of the user's 80 parallel requests through (got $allowed)"
tap_is "$(q -d $DB -c "SELECT elfsofa.rate_limit_reset('user:c0000000-0000-4000-8000-00000000000c')")" "1" \
    "the user's bucket lived in shared memory"

# shared memory full: long-lived buckets are kept, the next bucket goes to the table
slots=$(q -d $DB -c "SHOW elfsofa.rate_limit_slots")
q -d $DB -c "SELECT elfsofa.rate_limit_reset()" >/dev/null
tap_is "$(q -d $DB -c "SELECT count(*) FILTER (WHERE elfsofa.rate_limit('fill-' || i, 5, '1 hour')) FROM generate_series(1, $slots) i")" \
    "$slots" "filled all $slots shared-memory slots"
tap_is "$(q -d $DB -c "SELECT elfsofa.rate_limit('overflow', 1, '1 hour'), elfsofa.rate_limit('overflow', 1, '1 hour')" -c "SELECT count(*) FROM elfsofa.rate_limits" | paste -sd'|')" \
    "t|f|1" "a new bucket beyond the slots is kept in the table, and still limited"
# idle (refilled) buckets are evicted to make room
q -d $DB -c "SELECT elfsofa.rate_limit_reset()" >/dev/null
q -d $DB -c "SELECT count(*) FROM generate_series(1, $slots) i WHERE elfsofa.rate_limit('idle-' || i, 5, '1 millisecond')" >/dev/null
sleep 0.1
tap_is "$(q -d $DB -c "SELECT elfsofa.rate_limit('after-idle', 1, '1 hour'), elfsofa.rate_limit('after-idle', 1, '1 hour')" -c "SELECT count(*) FROM elfsofa.rate_limits" | paste -sd'|')" \
    "t|f|0" "idle buckets are evicted, so a new bucket stays in shared memory"
q -d $DB -c "SELECT elfsofa.rate_limit_reset()" >/dev/null

psql -X -q -c "DROP DATABASE $DB" >/dev/null
tap_done
