#!/usr/bin/env bash
# test/scripts/22_orders_lock_order_collation.sh — the global stock lock order
# (product, "main", then the other locations by name) must be one order
# whatever the database's collation.  process_order sorts an order's
# locations in C (byte order); statements that lock many rows at once sort
# them in SQL.  In a database whose default collation is ICU's English (as
# CREATE DATABASE ... LOCALE_PROVIDER icu makes), location codes with _ or -
# sort differently there ('a_1' < 'a1' in ICU, 'a1' < 'a_1' in bytes).  So:
# a DBA holds stock row a_5; a cancel of an order with lines at a_1, a_5 and
# a1 locks its rows; a buyer takes a1 and a_1 by inventory_updates.  With the
# SQL sorting by the database's collation the cancel held a_1 and waited for
# a1 while the buyer held a1 and waited for a_1: a deadlock.
source "$(dirname "$0")/../tap.sh"
es_client_env
DB=elfsofa_icu_lock_order
WORK=$ES_TMP/icu_lock_order
rm -rf "$WORK"; mkdir -p "$WORK"
psql -X -q -c "DROP DATABASE IF EXISTS $DB" \
     -c "CREATE DATABASE $DB TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'en'" >/dev/null
q -d $DB >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION elfsofa;
INSERT INTO elfsofa.products (sku, name, price) VALUES ('LO-1', 'lock order cover', 100);
SELECT elfsofa.restock('LO-1', 10, l) FROM unnest(ARRAY['a_1', 'a_5', 'a1']) l;
INSERT INTO elfsofa.customers (id, email) VALUES ('66666666-6666-6666-6666-666666666666', 'lockorder@example.th');
SQL
tap_is "$(q -d $DB -c "SELECT string_agg(location, ' ' ORDER BY location) FROM elfsofa.stock_levels")" "a_1 a_5 a1" \
    "in this database's collation a_1 < a_5 < a1 (in bytes: a1 < a_1 < a_5)"
oid=$(q -d $DB -c "SELECT elfsofa.process_order('{\"customer_id\": \"66666666-6666-6666-6666-666666666666\", \"items\": [{\"sku\": \"LO-1\", \"quantity\": 3}]}',
                    '[{\"sku\": \"LO-1\", \"location\": \"a_1\", \"quantity\": 1}, {\"sku\": \"LO-1\", \"location\": \"a_5\", \"quantity\": 1}, {\"sku\": \"LO-1\", \"location\": \"a1\", \"quantity\": 1}]') ->> 'order_id'")
tap_ok "$([ -n "$oid" ]; echo $?)" "an order with a line at each of the three locations"

session() {     # session <name>: psql reading from the fifo $WORK/<name>.in, fd in FD_<name>
    rm -f "$WORK/$1.in"; mkfifo "$WORK/$1.in"
    timeout 120 psql -X -q -A -t -d $DB <"$WORK/$1.in" >"$WORK/$1.out" 2>&1 &
    eval "PID_$1=$!"
    exec {fd}>"$WORK/$1.in"
    eval "FD_$1=$fd"
}
say() { local fd; eval "fd=\$FD_$1"; echo "$2" >&"$fd"; }
waiting() {     # waiting <application_name>: until its backend waits on a lock (10 s at most)
    for _ in $(seq 1 200); do
        [ "$(q -d $DB -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1' AND wait_event_type = 'Lock'")" = 1 ] && return 0
        sleep 0.05
    done
    return 1
}

session dba; session canceller; session buyer
say dba "SET application_name = 'lo_dba'; BEGIN; UPDATE elfsofa.stock_levels SET updated_at = updated_at WHERE location = 'a_5'; SELECT 'held';"
for _ in $(seq 1 100); do grep -q held "$WORK/dba.out" && break; sleep 0.05; done
say canceller "SET application_name = 'lo_cancel'; SELECT 'cancelled: ' || (elfsofa.set_order_status($oid, 'cancelled') ->> 'status');"
waiting lo_cancel
tap_ok $? "the cancel waits for the DBA's row"
say buyer "SET application_name = 'lo_buyer'; SELECT 'bought: ' || (elfsofa.process_order('{\"customer_id\": \"66666666-6666-6666-6666-666666666666\", \"items\": [{\"sku\": \"LO-1\", \"quantity\": 2}]}', '[{\"sku\": \"LO-1\", \"location\": \"a1\", \"quantity\": 1}, {\"sku\": \"LO-1\", \"location\": \"a_1\", \"quantity\": 1}]') ->> 'status');"
waiting lo_buyer
tap_ok $? "the buyer waits for a row the cancel holds"
say dba "COMMIT;"
for s in dba canceller buyer; do eval "exec {FD_$s}>&-"; done
for s in dba canceller buyer; do eval "wait \$PID_$s"; done
tap_is "$(grep -h 'cancelled:\|bought:' "$WORK/canceller.out" "$WORK/buyer.out" | sort | tr '\n' ' ')" "bought: pending cancelled: cancelled " \
    "both finish: the cancel, then the order"
tap_is "$(cat "$WORK/canceller.out" "$WORK/buyer.out" | grep -c 'deadlock detected')" 0 "no deadlock"
tap_is "$(q -d $DB -c "SELECT string_agg(location || ' ' || on_hand || '/' || reserved, ', ' ORDER BY location COLLATE \"C\") FROM elfsofa.stock_levels")" \
    "a1 10/1, a_1 10/1, a_5 10/0" "the cancelled units are free again, the new order's reserved"

psql -X -q -c "DROP DATABASE IF EXISTS $DB" >/dev/null
tap_done
