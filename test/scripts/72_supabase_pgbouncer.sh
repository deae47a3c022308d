#!/usr/bin/env bash
# test/scripts/72_supabase_pgbouncer.sh — elfsofa behind a transaction-mode
# pooler, as Supabase's apps reach it (Supavisor / PgBouncer on port 6543):
# many clients share few server connections, and each transaction may land on
# a backend another client used a moment before.  Whatever elfsofa remembers
# per backend must not leak from one client's transaction into the next.
#
# PgBouncer (pool_mode = transaction, 2 server connections) in front of make
# test's server.  16 clients place orders as PostgREST does (BEGIN; the JWT
# claims with set_config(..., true); SET LOCAL ROLE authenticated; the RPC;
# COMMIT), each for one of two signed-in customers picked at random per
# transaction: every order is its transaction's customer's, and its audit row
# and ledger rows name that customer's sub.  Idempotent retries of one key
# from 8 clients at once make one order.  A transaction that fails half-way
# (a stock shortfall) leaves nothing behind for the next client on its
# backend.  elfsofa-listen, connected straight to PostgreSQL (LISTEN does not
# pass a transaction pooler), prints every event.
source "$(dirname "$0")/../tap.sh"
es_client_env
DB=elfsofa_pgbouncer
PGB_DIR=$ES_TMP/pgbouncer
PGB_PORT=$((ES_PORT + 29))
[ -x /usr/sbin/pgbouncer ] || es_install_packages
rm -rf "$PGB_DIR"; mkdir -p "$PGB_DIR"

psql -X -q -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
q -d $DB -f "$ES_ROOT/test/supabase_roles.sql" >/dev/null
q -d $DB >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION elfsofa;
SELECT elfsofa.grant_api();
INSERT INTO elfsofa.products (sku, name, price) SELECT 'PB-' || i, 'pooled cover ' || i, 200 FROM generate_series(1, 20) i;
SELECT count(elfsofa.restock('PB-' || i, 100000)) FROM generate_series(1, 20) i;
INSERT INTO elfsofa.products (sku, name, price) VALUES ('PB-SHORT', 'nearly gone', 900);
SELECT elfsofa.restock('PB-SHORT', 1);
SELECT elfsofa.upsert_customer('a@pooled.th', 'Customer A', NULL, 'a0000000-0000-4000-8000-00000000000a');
SELECT elfsofa.upsert_customer('b@pooled.th', 'Customer B', NULL, 'b0000000-0000-4000-8000-00000000000b');
-- what each transaction says it did: the sub it signed in with, and the order it got
CREATE TABLE public.pooled_log (sub uuid, order_id bigint, outcome text);
GRANT INSERT ON public.pooled_log TO authenticated;
SQL
tap_ok $? "a shop with two signed-in customers, behind the API roles"

# PgBouncer runs as the server's user (it refuses root), on a socket of its own
cat >"$PGB_DIR/pgbouncer.ini" <<EOF
[databases]
$DB = host=$ES_TMP/sock port=$ES_PORT dbname=$DB
[pgbouncer]
listen_addr =
listen_port = $PGB_PORT
unix_socket_dir = $PGB_DIR
auth_type = trust
auth_file = $PGB_DIR/users.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
logfile = $PGB_DIR/pgbouncer.log
pidfile = $PGB_DIR/pgbouncer.pid
EOF
echo "\"$(es_server_user)\" \"\"" >"$PGB_DIR/users.txt"
[ "$(id -u)" = 0 ] && chown -R postgres: "$PGB_DIR"
es_as_server_user /usr/sbin/pgbouncer -d "$PGB_DIR/pgbouncer.ini" >/dev/null 2>&1
stop_pgbouncer() { [ -f "$PGB_DIR/pgbouncer.pid" ] && kill "$(cat "$PGB_DIR/pgbouncer.pid")" 2>/dev/null; }
trap stop_pgbouncer EXIT
for _ in $(seq 1 50); do [ -S "$PGB_DIR/.s.PGSQL.$PGB_PORT" ] && break; sleep 0.1; done
pq() { psql -X -A -t -q -h "$PGB_DIR" -p $PGB_PORT -d $DB "$@"; }
tap_is "$(pq -c "SELECT 1")" 1 "PgBouncer (transaction mode, 2 server connections) answers"

listen_start $DB "$PGB_DIR"

# PostgREST's transaction for rpc/process_order, for customer a or b at random
cat >"$PGB_DIR/order.sql" <<'SQL'
\set who random(0, 1)
\set s random(1, 20)
BEGIN;
SELECT set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', CASE WHEN :who = 0 THEN 'a0000000-0000-4000-8000-00000000000a' ELSE 'b0000000-0000-4000-8000-00000000000b' END)::text, true);
SET LOCAL ROLE authenticated;
INSERT INTO public.pooled_log
  SELECT (current_setting('request.jwt.claims')::jsonb ->> 'sub')::uuid, (r ->> 'order_id')::bigint, 'ordered'
    FROM elfsofa.process_order(jsonb_build_object('items', jsonb_build_array(jsonb_build_object('sku', 'PB-' || :s, 'quantity', 1)))) r;
COMMIT;
SQL
pgbench -n -c 16 -j 2 -t 40 -M extended -h "$PGB_DIR" -p $PGB_PORT -f "$PGB_DIR/order.sql" $DB >"$PGB_DIR/pgbench.log" 2>&1
rc=$?
grep -E 'actually processed|failed|aborted|ERROR' "$PGB_DIR/pgbench.log" | head -3 | sed 's/^/# /'
tap_is "$rc" 0 "16 clients place 640 orders as PostgREST would, through 2 pooled server connections"
tap_is "$(q -d $DB -c "SELECT count(*) FROM public.pooled_log")" 640 "every transaction logged its order"
tap_is "$(q -d $DB -c "SELECT count(*) FROM public.pooled_log l JOIN elfsofa.orders o ON o.id = l.order_id
                        JOIN elfsofa.customers c ON c.id = o.customer_id WHERE c.auth_user_id = l.sub")" 640 \
    "every order belongs to the customer its transaction signed in as"
tap_is "$(q -d $DB -c "SELECT count(*) FROM public.pooled_log l JOIN elfsofa.stock_ledger g ON g.order_id = l.order_id
                        WHERE g.actor = l.sub::text")" 640 "every reservation's ledger row names that customer's sub"
tap_is "$(q -d $DB -c "SELECT count(*) FROM public.pooled_log l JOIN elfsofa.audit_log a
                          ON a.table_name = 'orders' AND a.operation = 'INSERT' AND (a.pk ->> 'id')::bigint = l.order_id
                        WHERE a.actor = l.sub::text AND a.actor_role = 'authenticated'")" 640 \
    "every order's audit row names that customer's sub and the authenticated role"
tap_is "$(q -d $DB -c "SELECT count(DISTINCT l.sub) FROM public.pooled_log l")" 2 "both customers ordered"

# one idempotency key, 8 clients at once, through the pool: one order
cat >"$PGB_DIR/retry.sql" <<'SQL'
BEGIN;
SELECT set_config('request.jwt.claims', '{"role": "authenticated", "sub": "a0000000-0000-4000-8000-00000000000a"}', true);
SET LOCAL ROLE authenticated;
INSERT INTO public.pooled_log
  SELECT 'a0000000-0000-4000-8000-00000000000a', (r ->> 'order_id')::bigint, 'retry'
    FROM elfsofa.process_order('{"items": [{"sku": "PB-1", "quantity": 2}], "idempotency_key": "pooled-retry-1"}') r;
COMMIT;
SQL
pgbench -n -c 8 -j 2 -t 3 -M extended -h "$PGB_DIR" -p $PGB_PORT -f "$PGB_DIR/retry.sql" $DB >"$PGB_DIR/retry.log" 2>&1
tap_is "$?" 0 "8 clients send the same request 3 times each with one idempotency key"
tap_is "$(q -d $DB -c "SELECT count(*) || ' ' || count(DISTINCT order_id) FROM public.pooled_log WHERE outcome = 'retry'")" "24 1" \
    "24 answers, all the same order"

# a transaction that fails half-way, then the next client on a pooled backend
cat >"$PGB_DIR/short.sql" <<'SQL'
BEGIN;
SELECT set_config('request.jwt.claims', '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-00000000000b"}', true);
SET LOCAL ROLE authenticated;
SELECT elfsofa.process_order('{"items": [{"sku": "PB-2", "quantity": 1}, {"sku": "PB-SHORT", "quantity": 5}]}');
COMMIT;
SQL
err=$(pq -f "$PGB_DIR/short.sql" 2>&1 >/dev/null)
tap_ok "$(grep -q 'insufficient stock\|PT409' <<<"$err"; echo $?)" "an order one SKU cannot cover fails (PT409) through the pool"
tap_is "$(pq -c "SELECT current_user || ' ' || coalesce(nullif(current_setting('request.jwt.claims', true), ''), 'none')")" \
    "$(es_server_user) none" "the next transaction on the pool runs as the pooler's user, with no claims left over"
tap_is "$(q -d $DB -c "SELECT count(*) FROM elfsofa.orders")" "$(q -d $DB -c "SELECT count(DISTINCT order_id) FROM public.pooled_log")" \
    "the failed order left no order behind (every order is one a transaction logged)"
tap_is "$(q -d $DB -c "SELECT elfsofa.available('PB-SHORT') || ' ' || (SELECT reserved FROM elfsofa.stock_levels s JOIN elfsofa.products p ON p.id = s.product_id WHERE p.sku = 'PB-2')")" \
    "1 $(q -d $DB -c "SELECT coalesce(sum(l.quantity), 0) FROM elfsofa.order_lines l WHERE l.sku = 'PB-2'")" \
    "and no reservation: PB-SHORT still has its unit, PB-2 holds only what its orders hold"

# the listener, straight to PostgreSQL
read -r printed committed twice <<<"$(listen_stop $DB "$PGB_DIR")"
tap_ok "$([ "$committed" -ge 1280 ]; echo $?)" "the 640 orders committed at least 1280 events (got $committed)"
tap_is "$printed $twice" "$committed 0" \
    "elfsofa-listen (connected to PostgreSQL itself) printed every event of the pooled orders, none twice"

stop_pgbouncer
psql -X -q -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
tap_done
