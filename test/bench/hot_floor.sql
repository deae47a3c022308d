\set c random(1, 1000)
WITH s AS (UPDATE bench.one_stock SET reserved = reserved + 1 WHERE id = 1 AND on_hand - reserved >= 1 RETURNING id) INSERT INTO bench.one_orders (customer, qty) SELECT md5('c' || :c)::uuid, 1 FROM s;
