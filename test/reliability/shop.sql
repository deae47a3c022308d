-- test/reliability/shop.sql — the shop the reliability scripts load, crash,
-- dump and replicate: 20 products with stock, 200 customers, and schema "rel"
-- with the workload's entry points.  rel.place() calls elfsofa.process_order
-- when it exists; before it landed, a plain-SQL order transaction of the same
-- shape (order, lines, reservation + ledger, payment, event, idempotency key).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS elfsofa;
CREATE SCHEMA rel;

INSERT INTO elfsofa.products (sku, name, price)
SELECT 'REL-' || lpad(i::text, 3, '0'), 'Reliability cover ' || i, 100 + 10 * i
  FROM generate_series(1, 20) i;
SELECT elfsofa.restock('REL-' || lpad(i::text, 3, '0'), 5000, 'main', 'initial stock')
  FROM generate_series(1, 20) i;
SELECT elfsofa.upsert_customer('c' || i || '@rel.test', 'Customer ' || i)
  FROM generate_series(1, 200) i;

CREATE FUNCTION rel.sku(p int) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT 'REL-' || lpad(p::text, 3, '0') $$;

CREATE FUNCTION rel.customer(c int) RETURNS uuid LANGUAGE sql STABLE
AS $$ SELECT id FROM elfsofa.customers WHERE lower(email) = 'c' || c || '@rel.test' $$;

-- The stand-in order transaction (only used while process_order is missing).
CREATE FUNCTION rel.place_sql(c int, p int, q int, p2 int, key text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    cust   uuid := rel.customer(c);
    oid    bigint := nextval('elfsofa.orders_id_seq');
    ts     timestamptz := now();
    it     record;
    n      int := 0;
    tot    numeric(12,2) := 0;
BEGIN
    FOR it IN
        SELECT pr.id, pr.sku, pr.price, sum(x.q)::int AS q
          FROM (VALUES (p, q), (p2, 1)) x(p, q)
          JOIN elfsofa.products pr ON pr.sku = rel.sku(x.p)
         GROUP BY 1, 2, 3 ORDER BY 1
    LOOP
        UPDATE elfsofa.stock_levels SET reserved = reserved + it.q, updated_at = ts
         WHERE product_id = it.id AND location = 'main' AND on_hand - reserved >= it.q;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'insufficient stock' USING ERRCODE = 'PT409';
        END IF;
        INSERT INTO elfsofa.stock_ledger (product_id, location, delta_reserved, reason, order_id, actor)
        VALUES (it.id, 'main', it.q, 'reserve', oid, current_user);
        n := n + 1;
        tot := tot + it.price * it.q;
        IF n = 1 THEN
            INSERT INTO elfsofa.orders (id, order_number, customer_id, total, payment_method, idempotency_key, created_at)
            VALUES (oid, 'ELF-' || to_char(ts, 'YYYY') || '-' || lpad(oid::text, 6, '0'), cust, 0, 'promptpay', key, ts);
        END IF;
        INSERT INTO elfsofa.order_lines (order_id, line_no, product_id, sku, location, quantity, unit_price, line_total, created_at)
        VALUES (oid, n, it.id, it.sku, 'main', it.q, it.price, it.price * it.q, ts);
    END LOOP;
    UPDATE elfsofa.orders SET total = tot WHERE id = oid AND created_at = ts;
    INSERT INTO elfsofa.payments (order_id, order_created_at, method, amount, status)
    VALUES (oid, ts, 'promptpay', tot, 'pending');
    INSERT INTO elfsofa.events (topic, key, data) VALUES ('order.created', oid::text, jsonb_build_object('order_id', oid));
    INSERT INTO elfsofa.idempotency_keys (customer_id, key, request_hash, order_id, response)
    VALUES (cust, key, md5(key), oid, jsonb_build_object('order_id', oid));
    RETURN oid;
END $$;

DO $make$
BEGIN
    IF to_regprocedure('elfsofa.process_order(jsonb,jsonb,jsonb)') IS NOT NULL THEN
        EXECUTE $f$
        CREATE FUNCTION rel.place(c int, p int, q int, p2 int, key text) RETURNS bigint
        LANGUAGE plpgsql AS $$
        BEGIN
            RETURN (elfsofa.process_order(
                jsonb_build_object('customer_id', rel.customer(c), 'idempotency_key', key,
                                   'items', jsonb_build_array(jsonb_build_object('sku', rel.sku(p), 'quantity', q),
                                                              jsonb_build_object('sku', rel.sku(p2), 'quantity', 1))),
                NULL,
                jsonb_build_object('method', 'promptpay', 'status', 'pending',
                                   'amount', (SELECT sum(pr.price * x.q) FROM (VALUES (p, q), (p2, 1)) x(p, q)
                                                JOIN elfsofa.products pr ON pr.sku = rel.sku(x.p))))->>'order_id')::bigint;
        EXCEPTION WHEN SQLSTATE 'PT409' THEN
            RETURN NULL;   -- out of stock: a documented business outcome
        END $$ $f$;
    ELSE
        EXECUTE $f$
        CREATE FUNCTION rel.place(c int, p int, q int, p2 int, key text) RETURNS bigint
        LANGUAGE plpgsql AS $$
        BEGIN
            RETURN rel.place_sql(c, p, q, p2, key);
        EXCEPTION WHEN SQLSTATE 'PT409' THEN
            RETURN NULL;
        END $$ $f$;
    END IF;
END $make$;

-- One lifecycle step on a random order: cancel (1 in 5 of open orders) or
-- move it one status on.  Uses whichever of set_order_status/cancel_order exist;
-- PT409 (an illegal transition after a concurrent change) is a business outcome.
CREATE FUNCTION rel.churn_one() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    o     record;
    nxt   text;
BEGIN
    SELECT id, status INTO o FROM elfsofa.orders
     WHERE id = 1 + floor(random() * (SELECT last_value FROM elfsofa.orders_id_seq))::bigint;
    IF NOT FOUND THEN
        RETURN 'none';
    END IF;
    IF o.status IN ('pending', 'confirmed', 'packed') AND random() < 0.2
       AND to_regprocedure('elfsofa.cancel_order(bigint,text)') IS NOT NULL THEN
        EXECUTE 'SELECT elfsofa.cancel_order($1, $2)' USING o.id, 'reliability churn';
        RETURN 'cancelled';
    END IF;
    nxt := CASE o.status WHEN 'pending' THEN 'confirmed' WHEN 'confirmed' THEN 'packed'
                         WHEN 'packed' THEN 'shipped' WHEN 'shipped' THEN 'delivered'
                         WHEN 'delivered' THEN 'returned' END;
    IF nxt IS NULL OR to_regprocedure('elfsofa.set_order_status(bigint,text,text)') IS NULL THEN
        RETURN 'none';
    END IF;
    EXECUTE 'SELECT elfsofa.set_order_status($1, $2, $3)' USING o.id, nxt, 'reliability churn';
    RETURN nxt;
EXCEPTION WHEN SQLSTATE 'PT409' THEN
    RETURN 'conflict';
END $$;
