-- test/bench/orders_setup.sql — the orders bench's database: elfsofa, the
-- PL/pgSQL version, the plain shop and the lock floor, each with 1000 products
-- and 1000 customers (run from the repository root: bench_orders.sh,
-- orders_instructions.sh).
SET client_min_messages = warning;
CREATE EXTENSION elfsofa;
\i test/bench/orders_plpgsql.sql
\i test/bench/orders_cpu.sql
\i test/bench/orders_plain.sql
INSERT INTO elfsofa.products (sku, name, price) SELECT 'B-' || i, 'bench cover ' || i, 100 + (i % 50) * 10 FROM generate_series(1, 1000) i;
INSERT INTO elfsofa.stock_levels (product_id, location, on_hand) SELECT id, 'main', 50000000 FROM elfsofa.products;
INSERT INTO elfsofa.stock_ledger (product_id, location, delta_on_hand, reason, actor) SELECT id, 'main', 50000000, 'restock', 'bench' FROM elfsofa.products;
INSERT INTO elfsofa.customers (id, email) SELECT md5('c' || i)::uuid, 'bench' || i || '@example.com' FROM generate_series(1, 1000) i;
INSERT INTO plainshop.products (sku, name, price, stock) SELECT 'B-' || i, 'bench cover ' || i, 100 + (i % 50) * 10, 50000000 FROM generate_series(1, 1000) i;
INSERT INTO plainshop.customers (id, email) SELECT md5('c' || i)::uuid, 'bench' || i || '@example.com' FROM generate_series(1, 1000) i;
CREATE TABLE bench.one_row_stock (id int PRIMARY KEY, stock bigint NOT NULL CHECK (stock >= 0));
INSERT INTO bench.one_row_stock VALUES (1, 1000000000);
CREATE TABLE bench.one_row_orders (id bigserial PRIMARY KEY, product_id int NOT NULL REFERENCES bench.one_row_stock,
                                   quantity int NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
-- Only the catalogs: an ANALYZE of the still-empty order partitions would record
-- "0 rows", and the foreign-key checks planned from that (in whichever
-- implementation runs first) scan the growing partition until autovacuum
-- analyzes it again.  Fresh partitions are left unanalyzed, as in production.
VACUUM ANALYZE elfsofa.products, elfsofa.stock_levels, elfsofa.stock_ledger, elfsofa.customers,
               plainshop.products, plainshop.customers, bench.one_row_stock;
