-- bench_events: the workload's tables.  With process_order (orders area) the
-- bench places real orders; without it, a stand-in order transaction writes
-- an order row, two lines and two stock updates, and its event comes from
-- the change trigger (enable_change_events) - one event per transaction.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS elfsofa;
DROP TABLE IF EXISTS public.bench_orders, public.bench_lines, public.bench_stock;
CREATE TABLE public.bench_orders (id bigserial PRIMARY KEY, customer int NOT NULL, total numeric(12,2) NOT NULL,
                                  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.bench_lines (order_id bigint NOT NULL, line int NOT NULL, sku int NOT NULL, qty int NOT NULL,
                                 PRIMARY KEY (order_id, line));
CREATE TABLE public.bench_stock (sku int PRIMARY KEY, on_hand int NOT NULL);
INSERT INTO public.bench_stock SELECT g, 1000000000 FROM generate_series(1, 1000) g;
SELECT elfsofa.enable_change_events('public.bench_orders', 'bench.order.created');
CREATE OR REPLACE FUNCTION public.bench_place(customer int, sku1 int, sku2 int) RETURNS bigint
LANGUAGE sql AS $$
    WITH o AS (INSERT INTO public.bench_orders (customer, total) VALUES (customer, 1780.00) RETURNING id),
         l AS (INSERT INTO public.bench_lines SELECT o.id, x.line, x.sku, 1
                 FROM o, (VALUES (1, sku1), (2, sku2)) x(line, sku))
    UPDATE public.bench_stock SET on_hand = on_hand - 1 WHERE sku IN (sku1, sku2)
    RETURNING (SELECT id FROM o);
$$;
-- process_order needs catalog, stock and a customer
DO $$
BEGIN
    IF to_regproc('elfsofa.process_order') IS NOT NULL THEN
        INSERT INTO elfsofa.products (sku, name, price)
        SELECT 'BENCH-' || g, 'bench cover ' || g, 890 FROM generate_series(1, 100) g
        ON CONFLICT (sku) DO NOTHING;
        PERFORM elfsofa.restock('BENCH-' || g, 100000, 'main', 'bench') FROM generate_series(1, 100) g;
        PERFORM elfsofa.upsert_customer('bench@example.co.th', 'Bench');
    END IF;
END $$;
TRUNCATE elfsofa.events;
