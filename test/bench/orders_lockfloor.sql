-- The one-row lock floor: a bare one-statement order (stock taken, order row
-- written) on a one-row stock table; every client queues on that row's lock
-- until its commit, which is what a hot SKU costs at the least.
WITH s AS (UPDATE bench.one_row_stock SET stock = stock - 3 WHERE id = 1 AND stock >= 3 RETURNING id)
INSERT INTO bench.one_row_orders (product_id, quantity) SELECT id, 3 FROM s;
