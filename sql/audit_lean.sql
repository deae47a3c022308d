-- A lean order: what one 3-line order writes, and that the audit, ledger and
-- event queries the README shows keep their answers now that the INSERTs of
-- orders, order lines and payments are recorded by key only.
\i test/regress_setup.sql
SET elfsofa.actor = 'regress';

INSERT INTO elfsofa.products (sku, name, price) VALUES
  ('LEAN-1', 'cover one', 100.00), ('LEAN-2', 'cover two', 250.00), ('LEAN-3', 'cover three', 990.00);
SELECT elfsofa.restock(sku, 10) FROM elfsofa.products WHERE sku LIKE 'LEAN-%' ORDER BY sku;
INSERT INTO elfsofa.customers (id, email) VALUES ('33333333-3333-3333-3333-333333333333', 'lean@example.com');

-- Rows and index entries written by this transaction, per table (partitions
-- under their parent; HOT updates add no index entry).
CREATE OR REPLACE FUNCTION public.lean_written() RETURNS TABLE (tbl text, rows_written bigint, index_entries bigint)
LANGUAGE plpgsql AS $$
DECLARE r record; i record; n bigint;
BEGIN
  FOR r IN SELECT t.relid, coalesce(p.inhparent, t.relid)::regclass::text AS parent,
                  t.n_tup_ins + t.n_tup_upd + t.n_tup_del AS w, t.n_tup_hot_upd AS hot
             FROM pg_stat_xact_user_tables t LEFT JOIN pg_inherits p ON p.inhrelid = t.relid
            WHERE t.n_tup_ins + t.n_tup_upd + t.n_tup_del > 0 AND t.schemaname = 'elfsofa' LOOP
    tbl := r.parent; rows_written := r.w; index_entries := 0;
    FOR i IN SELECT pg_get_expr(x.indpred, x.indrelid) AS pred FROM pg_index x WHERE x.indrelid = r.relid LOOP
      EXECUTE format('SELECT count(*) FROM %s WHERE xmin = pg_current_xact_id()::xid AND (%s)', r.relid::regclass, coalesce(i.pred, 'true')) INTO n;
      index_entries := index_entries + greatest(n - r.hot, 0);
    END LOOP;
    RETURN NEXT;
  END LOOP;
END $$;

-- the order, in a session of its own (a backend's table counters also hold
-- its earlier transactions' counts until they are flushed)
\c -
SET elfsofa.actor = 'regress';
BEGIN;
SELECT elfsofa.process_order(
  '{"customer_id": "33333333-3333-3333-3333-333333333333", "items": [{"sku": "LEAN-1", "quantity": 1}, {"sku": "LEAN-2", "quantity": 2}, {"sku": "LEAN-3", "quantity": 1}]}',
  NULL, '{"method": "promptpay", "provider": "omise", "provider_ref": "chrg_lean"}') - 'order_number' AS placed;
SELECT tbl, sum(rows_written) AS rows_written, sum(index_entries) AS index_entries FROM public.lean_written() GROUP BY tbl ORDER BY tbl;
SELECT sum(rows_written) AS rows_written, sum(index_entries) AS index_entries FROM public.lean_written();
COMMIT;
SELECT id AS oid, created_at AS ocreated FROM elfsofa.orders \gset
CREATE TEMP TABLE first_version AS
  SELECT 'orders' AS tbl, jsonb_build_object('id', o.id, 'created_at', o.created_at) AS pk, to_jsonb(o) AS img FROM elfsofa.orders o
  UNION ALL
  SELECT 'order_lines', jsonb_build_object('order_id', l.order_id, 'line_no', l.line_no, 'created_at', l.created_at), to_jsonb(l) FROM elfsofa.order_lines l
  UNION ALL
  SELECT 'payments', jsonb_build_object('id', p.id), to_jsonb(p) FROM elfsofa.payments p;

-- audit_log: the INSERTs of the order, its lines and its payment carry the key
-- only; the stock rows' reservations are recorded by their ledger rows alone
-- (below); everything else as before
SELECT table_name, operation, count(*) AS n, count(*) FILTER (WHERE new_data IS NULL) AS key_only
  FROM elfsofa.audit_log WHERE table_name IN ('orders', 'order_lines', 'payments', 'stock_levels')
 GROUP BY 1, 2 ORDER BY 1, 2;

-- its life: confirmed, the payment captured, packed, shipped
SELECT elfsofa.set_order_status(:oid, 'confirmed') ->> 'status' AS status;
SELECT elfsofa.record_payment(:oid, '{"method": "promptpay", "provider": "omise", "provider_ref": "chrg_lean", "status": "captured"}') ->> 'status' AS payment;
SELECT elfsofa.set_order_status(:oid, 'packed') ->> 'status' AS status;
SELECT elfsofa.set_order_status(:oid, 'shipped') ->> 'status' AS status;

-- audit_history (README): every row's story starts with its full first version,
-- the very image the INSERT's audit row used to hold
SELECT f.tbl, f.pk - 'created_at' AS pk, h.operation, h.new_data = f.img AS first_version_intact
  FROM first_version f, LATERAL elfsofa.audit_history(('elfsofa.' || f.tbl)::regclass, f.pk) h
 WHERE h.operation = 'INSERT' ORDER BY 1, 2::text;
SELECT h.operation, h.actor, h.old_data - 'updated_at' AS old_data, h.new_data - 'updated_at' - 'created_at' - 'customer_id' - 'order_number' AS new_data, h.changed_columns
  FROM elfsofa.audit_history('elfsofa.orders', jsonb_build_object('id', :oid, 'created_at', :'ocreated'::timestamptz)) h;
SELECT h.operation, h.new_data ->> 'status' AS status, h.changed_columns
  FROM elfsofa.payments p, elfsofa.audit_history('elfsofa.payments', jsonb_build_object('id', p.id)) h;

-- audit_summary (README): one change per changed row, as before
SELECT table_name, operation, actor, changes
  FROM elfsofa.audit_summary(now() - interval '1 hour', now() + interval '1 hour')
 WHERE table_name IN ('orders', 'order_lines', 'payments', 'stock_levels') ORDER BY 1, 2;

-- the ledger (README: every stock change one row) and the events of the order
SELECT p.sku, sum(g.delta_on_hand) AS on_hand, sum(g.delta_reserved) AS reserved,
       (SELECT s.on_hand || '/' || s.reserved FROM elfsofa.stock_levels s WHERE s.product_id = p.id) AS stock_levels,
       string_agg(g.reason::text, ',' ORDER BY g.id) AS reasons
  FROM elfsofa.products p JOIN elfsofa.stock_ledger g ON g.product_id = p.id GROUP BY p.id, p.sku ORDER BY p.sku;
SELECT topic, key, data - 'order_number' - 'customer_id' AS data FROM elfsofa.events_since(0) WHERE topic <> 'product.changed' ORDER BY id;

-- stock_levels: a reservation's story entry comes from its ledger row (an id
-- from the audit sequence, the audit facts), with on_hand and reserved before
-- and after, between the restock's INSERT and the shipment's UPDATE (audited)
SELECT h.operation, h.actor, h.db_user = current_user AS db_user, h.old_data - 'updated_at' AS old_data,
       h.new_data - 'updated_at' AS new_data, h.changed_columns,
       (h.new_data ->> 'updated_at')::timestamptz = h.logged_at AS updated_at_set,
       h.txid = (SELECT a.txid FROM elfsofa.audit_log a WHERE a.table_name = 'orders' AND a.operation = 'INSERT') AS orders_txid
  FROM elfsofa.products p, elfsofa.audit_history('elfsofa.stock_levels', jsonb_build_object('product_id', p.id, 'location', 'main', 'bucket', 0)) h
 WHERE p.sku = 'LEAN-2';
SELECT g.reason, g.audit_id IS NOT NULL AS stands_for_audit_row, g.txid IS NOT NULL AS txid, g.db_user = current_user AS db_user
  FROM elfsofa.stock_ledger g JOIN elfsofa.products p ON p.id = g.product_id WHERE p.sku = 'LEAN-2' ORDER BY g.id;
-- two reservations of one row in one transaction (the second leaves
-- updated_at as it was), a DBA's own UPDATE in between (audited), a hot
-- product (its reservation recorded by its ledger row, with the bucket); then every stock row's story,
-- replayed from its first version, must end at the row as it is now
BEGIN;
SELECT elfsofa.process_order('{"customer_id": "33333333-3333-3333-3333-333333333333", "items": [{"sku": "LEAN-1", "quantity": 1}]}') ->> 'status' AS status;
UPDATE elfsofa.stock_levels SET on_hand = on_hand + 5 WHERE product_id = (SELECT id FROM elfsofa.products WHERE sku = 'LEAN-1');
SELECT elfsofa.process_order('{"customer_id": "33333333-3333-3333-3333-333333333333", "items": [{"sku": "LEAN-1", "quantity": 2}]}') ->> 'status' AS status;
COMMIT;
SELECT elfsofa.set_stock_buckets('LEAN-3', 2);
SELECT elfsofa.process_order('{"customer_id": "33333333-3333-3333-3333-333333333333", "items": [{"sku": "LEAN-3", "quantity": 1}]}') ->> 'status' AS status;
-- the first LEAN-1 order and the hot one cancelled (releases: a ledger row, an audited bucket row)
SELECT o.id, elfsofa.set_order_status(o.id, 'cancelled') ->> 'status' AS status
  FROM elfsofa.orders o WHERE o.id IN (2, 4) ORDER BY o.id;
SELECT h.operation, h.old_data - 'updated_at' AS old_data, h.new_data - 'updated_at' AS new_data, h.changed_columns
  FROM elfsofa.products p, elfsofa.audit_history('elfsofa.stock_levels', jsonb_build_object('product_id', p.id, 'location', 'main', 'bucket', 0)) h
 WHERE p.sku = 'LEAN-1';
-- the hot product: each reservation goes to one bucket row (which one
-- depends on the backend) and is recorded by its ledger row (bucket set);
-- the split and the cancel's release over the buckets are audited rows.
-- Three more buyers, each in a session of its own, so several buckets take one.
\c -
SELECT elfsofa.process_order('{"customer_id": "33333333-3333-3333-3333-333333333333", "items": [{"sku": "LEAN-3", "quantity": 1}]}') ->> 'status' AS status;
\c -
SELECT elfsofa.process_order('{"customer_id": "33333333-3333-3333-3333-333333333333", "items": [{"sku": "LEAN-3", "quantity": 1}]}') ->> 'status' AS status;
\c -
SELECT elfsofa.process_order('{"customer_id": "33333333-3333-3333-3333-333333333333", "items": [{"sku": "LEAN-3", "quantity": 1}]}') ->> 'status' AS status;
SELECT g.reason, g.delta_reserved, g.audit_id IS NOT NULL AS stands_for_audit_row, g.bucket IS NOT NULL AS bucket_set
  FROM elfsofa.stock_ledger g JOIN elfsofa.products p ON p.id = g.product_id WHERE p.sku = 'LEAN-3' ORDER BY g.id;
-- (how many audited rows the release makes depends on the bucket it finds
-- its reserved unit in; the entries from the ledger do not)
SELECT h.operation, count(*) FILTER (WHERE EXISTS (SELECT 1 FROM elfsofa.audit_log a WHERE a.id = h.id)) > 0 AS some_from_audit_log,
       count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM elfsofa.audit_log a WHERE a.id = h.id)) AS from_ledger
  FROM elfsofa.stock_levels s JOIN elfsofa.products p ON p.id = s.product_id,
       elfsofa.audit_history('elfsofa.stock_levels', jsonb_build_object('product_id', s.product_id, 'location', s.location, 'bucket', s.bucket)) h
 WHERE p.sku = 'LEAN-3' GROUP BY 1 ORDER BY 1;
CREATE FUNCTION pg_temp.replay(pk jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE h record; img jsonb; c text; bad text := '';
BEGIN
  FOR h IN SELECT * FROM elfsofa.audit_history('elfsofa.stock_levels', pk) LOOP
    IF h.operation = 'INSERT' THEN img := h.new_data;
    ELSE
      FOREACH c IN ARRAY h.changed_columns LOOP
        IF img -> c IS DISTINCT FROM h.old_data -> c
           AND NOT (c = 'updated_at' AND (img ->> c)::timestamptz = (h.old_data ->> c)::timestamptz) THEN
          bad := bad || format(' %s: %s then %s;', c, img -> c, h.old_data -> c);
        END IF;
      END LOOP;
      img := img || h.new_data;
    END IF;
  END LOOP;
  RETURN jsonb_build_object('mismatches', bad, 'ends_at_row', img - 'updated_at' = (SELECT to_jsonb(s) - 'updated_at' FROM elfsofa.stock_levels s WHERE to_jsonb(s) @> pk),
                            'updated_at', (img ->> 'updated_at')::timestamptz = (SELECT s.updated_at FROM elfsofa.stock_levels s WHERE to_jsonb(s) @> pk));
END $$;
SELECT p.sku, s.bucket, pg_temp.replay(jsonb_build_object('product_id', s.product_id, 'location', s.location, 'bucket', s.bucket)) AS replayed
  FROM elfsofa.stock_levels s JOIN elfsofa.products p ON p.id = s.product_id ORDER BY 1, 2;
-- keys that name no stock row read no ledger rows, and never fail
SELECT k, (SELECT count(*) FROM elfsofa.audit_history('elfsofa.stock_levels', k::jsonb)) AS entries
  FROM unnest(ARRAY['{"product_id": "1", "location": "main", "bucket": 0}', '{"product_id": 1.5, "location": "main", "bucket": 0}',
                    '{"product_id": 1, "location": "main"}', '{"product_id": 1, "location": "main", "bucket": 1}',
                    '{"product_id": 99999999999999999999, "location": "main", "bucket": 0}', '[1]', 'null']) AS k;
-- audit ids: one sequence for audit rows and the ledger rows that stand in for them
SELECT count(*) = count(DISTINCT id) AS unique_ids
  FROM (SELECT id FROM elfsofa.audit_log UNION ALL SELECT audit_id FROM elfsofa.stock_ledger WHERE audit_id IS NOT NULL) x;

-- a table of one's own with the option: the first version comes back from the
-- DELETE's image with the UPDATEs undone, excluded columns stay out, and a
-- TRUNCATE (the row gone unrecorded) leaves the INSERT without an image
DROP TABLE IF EXISTS lean_own;
CREATE TABLE lean_own (id int PRIMARY KEY, v text, secret text, n int);
SELECT elfsofa.enable_audit('lean_own', '{secret}');
DROP TRIGGER elfsofa_audit ON lean_own;
CREATE TRIGGER elfsofa_audit AFTER INSERT OR UPDATE OR DELETE ON lean_own
  FOR EACH ROW EXECUTE FUNCTION elfsofa.audit_trigger('@insert_key', '3:secret');
INSERT INTO lean_own VALUES (1, 'a', 's1', 1), (2, 'x', 's2', NULL);
UPDATE lean_own SET v = 'b', n = NULL WHERE id = 1;
UPDATE lean_own SET secret = 'only-secret' WHERE id = 1;
UPDATE lean_own SET n = 3 WHERE id = 1;
DELETE FROM lean_own WHERE id = 1;
UPDATE lean_own SET v = 'y', n = 7 WHERE id = 2;
SELECT operation, old_data, new_data FROM elfsofa.audit_history('lean_own', '{"id": 1}');
SELECT operation, old_data, new_data FROM elfsofa.audit_history('lean_own', '{"id": 2}');
SELECT elfsofa.audit_row_image('lean_own', '{"id": 2}') AS image_now, elfsofa.audit_row_image('lean_own', '{"id": 9}') AS no_row;
TRUNCATE lean_own;
SELECT operation, new_data FROM elfsofa.audit_history('lean_own', '{"id": 2}');
SELECT elfsofa.audit_row_image('lean_own', '[1]');
:err
DROP TABLE lean_own;
DROP FUNCTION public.lean_written();
