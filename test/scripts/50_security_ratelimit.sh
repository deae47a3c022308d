#!/usr/bin/env bash
# Rate limits under concurrency: parallel clients sharing one bucket get exactly
# max_requests tokens between them, in shared memory and in the table store;
# api_guard holds a user to the limit across connections; a full shared-memory
# table (10,000 distinct addresses) still counts every request, read-only ones
# too, and keeps the exhausted buckets; the client address is the trusted
# proxy's (last x-forwarded-for entry), not a hop the caller wrote.  No timed
# assertion: only the results of the requests are checked.
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

# shared memory full: every slot taken by a bucket that is not idle
slots=$(q -d $DB -c "SHOW elfsofa.rate_limit_slots")
q -d $DB -c "SELECT elfsofa.rate_limit_reset()" >/dev/null
tap_is "$(q -d $DB -c "SELECT elfsofa.rate_limit('limited', 2, '1 hour'), elfsofa.rate_limit('limited', 2, '1 hour'), elfsofa.rate_limit('limited', 2, '1 hour')" | tr -d '|')" \
    "ttf" "bucket 'limited' is exhausted after 2 requests"
tap_is "$(q -d $DB -c "SELECT count(*) FILTER (WHERE elfsofa.rate_limit('fill-' || i, 5, '1 hour')) FROM generate_series(1, $slots) i")" \
    "$slots" "$slots more distinct buckets, one request each, all allowed"
tap_is "$(q -d $DB -c "SELECT elfsofa.rate_limit('limited', 2, '1 hour')")" "f" \
    "after $slots distinct buckets the exhausted one is still limited (a full set gives up its most refilled bucket)"
tap_is "$(q -d $DB -c "SELECT elfsofa.rate_limit('overflow', 1, '1 hour'), elfsofa.rate_limit('overflow', 1, '1 hour')" -c "SELECT count(*) FROM elfsofa.rate_limits" | paste -sd'|')" \
    "t|f|0" "a new bucket in the full table is limited in shared memory, nothing spills to the table store"
tap_is "$(q -d $DB -c "BEGIN READ ONLY" -c "SELECT string_agg(elfsofa.rate_limit('ro-new', 2, '1 hour')::text, ',') FROM generate_series(1, 4)" -c "COMMIT" -c "SELECT count(*) FROM elfsofa.rate_limits" | paste -sd'|')" \
    "true,true,false,false|0" "in a read-only transaction (a PostgREST GET) a new bucket in the full table is counted too"

# api_guard as PostgREST runs it for anon, in read-only transactions: 3 requests per minute per address
# guard_anon <x-forwarded-for value> <requests>: how many of the requests api_guard lets through
guard_anon() {
    q -d $DB -v xff="$1" -v n="$2" <<'SQL'
BEGIN READ ONLY;
SET LOCAL elfsofa.rate_limit_anon_per_minute = 3;
SELECT set_config('request.headers', json_build_object('x-forwarded-for', :'xff')::text, true) IS NULL AS unused \gset
SELECT set_config('rl.n', :'n', true) IS NULL AS unused \gset
SET LOCAL ROLE anon;
DO $$
DECLARE passed int := 0;
BEGIN
    FOR i IN 1 .. current_setting('rl.n')::int LOOP
        BEGIN
            PERFORM elfsofa.api_guard();
            passed := passed + 1;
        EXCEPTION WHEN SQLSTATE 'PT429' THEN NULL;
        END;
    END LOOP;
    PERFORM set_config('rl.passed', passed::text, true);
END
$$;
SELECT current_setting('rl.passed');
COMMIT;
SQL
}
q -d $DB -c "SELECT elfsofa.rate_limit_reset()" >/dev/null
tap_is "$(guard_anon "10.1.1.1, 198.51.100.20" 5)" "3" "anon 198.51.100.20 (the hop the proxy appended): 3 of 5 requests through"
tap_is "$(for i in 1 2 3 4 5; do guard_anon "203.0.113.$i, 198.51.100.20" 1; done | awk '{s += $1} END {print s}')" "0" \
    "a spoofed first x-forwarded-for hop, different each time, gets none of 5 more through"
tap_is "$(q -d $DB <<'SQL'
BEGIN READ ONLY;
SELECT set_config('request.headers', '{"cf-connecting-ip":"203.0.113.99","x-forwarded-for":"198.51.100.20"}', true) IS NULL AS unused \gset
SET LOCAL ROLE anon;
DO $$ BEGIN PERFORM elfsofa.api_guard(); EXCEPTION WHEN SQLSTATE 'PT429' THEN PERFORM set_config('rl.r', 'limited', true); END $$;
SELECT current_setting('rl.r', true);
COMMIT;
SQL
)" "limited" "a cf-connecting-ip the caller sent is not trusted by default: still limited"
tap_is "$(guard_anon "" 5)" "3" "no address at all: the shared no-address bucket lets 3 of 5 through"
tap_is "$(guard_anon "not an address" 2)" "0" "an unusable address counts in the same shared bucket"
tap_is "$(q -d $DB <<'SQL'
BEGIN READ ONLY;
SET LOCAL elfsofa.rate_limit_anon_per_minute = 3;
SET LOCAL ROLE anon;
DO $$
DECLARE passed int := 0;
BEGIN
    FOR i IN 1 .. 10000 LOOP
        PERFORM set_config('request.headers', json_build_object('x-forwarded-for', '10.0.0.1, 100.64.' || (i / 256) || '.' || (i % 256))::text, true);
        BEGIN
            PERFORM elfsofa.api_guard();
            passed := passed + 1;
        EXCEPTION WHEN SQLSTATE 'PT429' THEN NULL;
        END;
    END LOOP;
    PERFORM set_config('rl.passed', passed::text, true);
END
$$;
SELECT current_setting('rl.passed');
COMMIT;
SQL
)" "10000" "10,000 distinct client addresses, one read-only request each, all through"
tap_is "$(guard_anon "10.1.1.1, 198.51.100.20" 3)" "0" "after them the exhausted address is still limited"
tap_is "$(guard_anon "10.1.1.1, 198.51.100.21" 5)" "3" "and a new address gets exactly its 3"
tap_is "$(q -d $DB -c "SELECT count(*) FROM elfsofa.rate_limits")" "0" "nothing was written to the table store"
q -d $DB -c "SELECT elfsofa.rate_limit_reset()" >/dev/null

psql -X -q -c "DROP DATABASE $DB" >/dev/null
tap_done
