#!/usr/bin/env bash
# test/scripts/21_orders_year_turn.sh — orders across the turn of a year.
#
# A server of its own runs under libfaketime with the clock a few seconds
# before 2027-01-01 00:00 (Asia/Bangkok).  Two groups of clients, one in
# TimeZone UTC (as PostgREST's sessions usually are) and one in Asia/Bangkok,
# place orders until well after the turn.  Then: every order number unique;
# no larger id with an earlier year (no number out of order); both years
# there; a number's year never before its order's created_at; maintenance
# after the turn makes the new year's partitions and the orders sit in the
# right months; an idempotent replay after the turn returns the old number.
source "$(dirname "$0")/../tap.sh"
source "$ES_ROOT/test/reliability/lib.sh"
es_faketime_prepare

TURN='2027-01-01 00:00:00+07'
rm -rf "$ES_TMP/year-turn"
# the server alone runs under the moved clock; clients read its time
LD_PRELOAD=$ES_FAKETIME_PRELOAD FAKETIME="+$(es_faketime_offset '2026-12-31 23:59:40')" DONT_FAKE_MONOTONIC=1 \
    rel_fresh_server $((ES_PORT + 17)) "$ES_TMP/year-turn" </dev/null ||
    { echo "not ok 1 - the year-turn server started"; exit 1; }
trap es_stop_server EXIT
YT_TMP=$ES_TMP

q -c "SET client_min_messages = warning; CREATE EXTENSION elfsofa" >/dev/null
cid=$(q -c "INSERT INTO elfsofa.products (sku, name, price) VALUES ('YT-1', 'year-turn cover', 100);
            SELECT elfsofa.restock('YT-1', 100000);
            SELECT elfsofa.upsert_customer('year-turn@example.th')" | tail -1)
before=$(q -c "SELECT now() < '$TURN'")
tap_is "$before" "t" "the clock starts before the turn of the year"

# an order with an idempotency key before the turn, replayed after it
first=$(q -c "SELECT elfsofa.process_order(jsonb_build_object('customer_id', '$cid'::uuid,
                'items', jsonb_build_array(jsonb_build_object('sku', 'YT-1', 'quantity', 1)),
                'idempotency_key', 'year-turn-1'))->>'order_number'")

# place orders until 8 s after the turn (at most 40 s)
secs=$(q -c "SELECT least(40, greatest(1, ceil(extract(epoch FROM '$TURN'::timestamptz - now()))::int + 8))")
cat >"$YT_TMP/order.sql" <<EOF
SELECT elfsofa.process_order('{"customer_id": "$cid", "items": [{"sku": "YT-1", "quantity": 1}]}');
EOF
PGOPTIONS="-c TimeZone=UTC" pgbench -n -c 2 -j 1 -T "$secs" -f "$YT_TMP/order.sql" >"$YT_TMP/utc.log" 2>&1 &
utc=$!
PGOPTIONS="-c TimeZone=Asia/Bangkok" pgbench -n -c 2 -j 1 -T "$secs" -f "$YT_TMP/order.sql" >"$YT_TMP/bkk.log" 2>&1
bkk_rc=$?
wait $utc
utc_rc=$?
tap_ok $((utc_rc + bkk_rc)) "orders placed across the turn by UTC and Bangkok sessions ($secs s)"
grep -hE 'number of transactions actually|aborted' "$YT_TMP/utc.log" "$YT_TMP/bkk.log" | sed 's/^/# /'
tap_is "$(q -c "SELECT now() > '$TURN'")" "t" "the clock is past the turn of the year"

tap_is "$(q -c "SELECT count(*) - count(DISTINCT order_number) FROM elfsofa.orders")" "0" \
    "no order number given twice"
tap_is "$(q -c "SELECT count(*) FROM (SELECT substr(order_number, 5, 4) AS y,
                       lag(substr(order_number, 5, 4)) OVER (ORDER BY id) AS prev
                  FROM elfsofa.orders) s WHERE y < prev")" "0" \
    "no order number out of order: years never go back as ids rise"
tap_is "$(q -c "SELECT string_agg(DISTINCT substr(order_number, 5, 4), ',') FROM elfsofa.orders")" "2026,2027" \
    "orders numbered in both years"
tap_is "$(q -c "SELECT count(*) FROM elfsofa.orders
                 WHERE substr(order_number, 5, 4)::int < extract(year FROM created_at AT TIME ZONE 'Asia/Bangkok')")" "0" \
    "no number's year before its order's created_at (Bangkok)"
q -c "SELECT 'year ' || y || ': ' || count(*) || ' orders, ids ' || min(id) || '-' || max(id)
        FROM (SELECT substr(order_number, 5, 4) AS y, id FROM elfsofa.orders) s GROUP BY y ORDER BY y" | sed 's/^/# /'

# maintenance after the turn: the new year's months ahead; rows in their months
maint=$(q -c "SELECT elfsofa.run_maintenance()->>'errors'")
tap_is "$maint" "0" "maintenance after the turn ran without errors"
tap_is "$(q -c "SELECT count(*) FROM pg_class WHERE relnamespace = 'elfsofa'::regnamespace
                  AND relname IN ('orders_p2027_01', 'orders_p2027_02', 'orders_p2027_03', 'orders_p2027_04',
                                  'order_lines_p2027_04', 'audit_log_p2027_04')")" "6" \
    "the new year's partitions exist up to premake months ahead"
tap_is "$(q -c "SELECT (SELECT count(*) FROM elfsofa.orders_p2026_12) > 0 AND (SELECT count(*) FROM elfsofa.orders_p2027_01) > 0
                   AND (SELECT count(*) FROM elfsofa.orders_p2026_12 WHERE created_at >= '$TURN') = 0
                   AND (SELECT count(*) FROM elfsofa.orders_p2027_01 WHERE created_at < '$TURN') = 0")" "t" \
    "orders of each year sit in that year's partition"

replay=$(q -c "SELECT r->>'order_number' || ' ' || (r->>'replayed')
                 FROM elfsofa.process_order(jsonb_build_object('customer_id', '$cid'::uuid,
                        'items', jsonb_build_array(jsonb_build_object('sku', 'YT-1', 'quantity', 1)),
                        'idempotency_key', 'year-turn-1')) r")
tap_is "$replay" "$first true" "a replay after the turn returns the order number given before it"
tap_ok $(grep -q '^ELF-2026-' <<<"$first" && echo 0 || echo 1) "the order before the turn is numbered 2026 ($first)"

# the time zone of order numbers is the DBA's, not a session's
err=$(psql -X -q -c "SET ROLE pg_monitor" -c "SET elfsofa.order_number_timezone = 'UTC'" 2>&1)
tap_ok $(grep -q "permission denied" <<<"$err" && echo 0 || echo 1) \
    "a plain role cannot change elfsofa.order_number_timezone"
err=$(psql -X -q -c "SET elfsofa.order_number_timezone = 'Mars/Olympus'" 2>&1)
tap_ok $(grep -q 'invalid value for parameter' <<<"$err" && echo 0 || echo 1) "an unknown time zone is refused"

tap_done
