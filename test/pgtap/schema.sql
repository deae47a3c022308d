-- pgTAP: the installed schema — tables, keys, constraints, functions, comments.
BEGIN;
SELECT plan(37);

SELECT has_schema('elfsofa');
SELECT has_schema('elfsofa_archive');
SELECT has_table('elfsofa', t, 'table elfsofa.' || t || ' exists')
  FROM unnest(ARRAY['categories','products','stock_levels','stock_ledger','customers',
                    'customer_interactions','orders','order_lines','payments','shipments',
                    'idempotency_keys','system_logs']) AS t;
SELECT col_is_pk('elfsofa', 'products', 'id', 'products.id is the primary key');
SELECT col_is_unique('elfsofa', 'products', 'sku', 'products.sku is unique');
SELECT col_type_is('elfsofa', 'products', 'price', 'numeric(12,2)', 'price is numeric(12,2)');
SELECT col_is_pk('elfsofa', 'stock_levels', ARRAY['product_id','location','bucket'], 'stock level per product, location and bucket (a hot product''s bucket rows)');
SELECT col_type_is('elfsofa', 'stock_levels', 'on_hand', 'elfsofa.stock_count', 'on_hand is a stock_count (domain: never negative)');
SELECT ok(EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'elfsofa.order_lines'::regclass
                   AND confrelid = 'elfsofa.orders'::regclass AND contype = 'f'),
          'order_lines references orders');
SELECT is((SELECT relkind::text FROM pg_class WHERE oid = 'elfsofa.orders'::regclass), 'p', 'orders is partitioned');
SELECT is((SELECT relkind::text FROM pg_class WHERE oid = 'elfsofa.order_lines'::regclass), 'p', 'order_lines is partitioned');
SELECT ok((SELECT count(*) FROM pg_inherits WHERE inhparent = 'elfsofa.orders'::regclass) >= 4,
          'orders has the current and next months');
SELECT has_index('elfsofa', 'products', 'products_active_category_newest_idx', 'index for active products of a category, newest first');
SELECT has_function('elfsofa', 'restock', ARRAY['text','integer','text','text']);
SELECT has_function('elfsofa', 'available', ARRAY['text','text']);
SELECT has_function('elfsofa', 'upsert_customer', ARRAY['text','text','text','uuid']);
SELECT is(count(*), 0::bigint, 'every elfsofa table has a comment')
  FROM pg_class c WHERE c.relnamespace = 'elfsofa'::regnamespace AND c.relkind IN ('r','p')
   AND NOT c.relispartition AND obj_description(c.oid, 'pg_class') IS NULL;
SELECT is(count(*), 0::bigint, 'every elfsofa function has a comment')
  FROM pg_proc p WHERE p.pronamespace = 'elfsofa'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL
   AND p.prorettype <> 'trigger'::regtype;
SELECT is(count(*), 0::bigint, 'no elfsofa RPC function is STRICT')
  FROM pg_proc p WHERE p.pronamespace = 'elfsofa'::regnamespace AND p.proisstrict;
-- a product needs only sku, name and price
SELECT lives_ok($$INSERT INTO elfsofa.products (sku, name, price) VALUES ('TAP-1', 'tap cover', 10)$$, 'product insert with defaults');
SELECT throws_ok($$INSERT INTO elfsofa.products (sku, name, price) VALUES ('TAP-2', 'negative', -1)$$, '23514', NULL, 'negative price refused');
SELECT throws_ok($$INSERT INTO elfsofa.products (sku, name, price) VALUES ('TAP-1', 'dup', 1)$$, '23505', NULL, 'duplicate sku refused');
SELECT is(elfsofa.restock('TAP-1', 3), 3, 'restock returns new on hand');
SELECT throws_ok($$SELECT elfsofa.restock('TAP-1', 0)$$, '22023', NULL, 'zero quantity is 22023');
SELECT throws_ok($$SELECT elfsofa.restock('NOPE', 1)$$, 'PT404', NULL, 'unknown sku is PT404');
SELECT is(elfsofa.available('TAP-1'), 3, 'available after restock');

SELECT * FROM finish();
ROLLBACK;
