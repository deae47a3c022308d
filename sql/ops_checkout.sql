-- cart_checkout: the cart becomes an order through process_order, atomically.
\i test/regress_setup.sql
INSERT INTO elfsofa.products (sku, name, price) VALUES
  ('ELF-3S-VEL-GRY', '3-seat cover, grey velvet', 1490.00),
  ('ELF-CUSHION', 'Cushion cover', 150.00);
SELECT elfsofa.restock('ELF-3S-VEL-GRY', 3), elfsofa.restock('ELF-CUSHION', 10);
INSERT INTO elfsofa.customers (id, email, full_name) VALUES
  ('c0000000-0000-4000-8000-000000000001', 'somchai@example.com', 'Somchai'),
  ('c0000000-0000-4000-8000-000000000002', 'malee@example.com', 'Malee');
\set c1 c0000000-0000-4000-8000-000000000001
\set c2 c0000000-0000-4000-8000-000000000002

SELECT elfsofa.cart_add(:'c1', 'ELF-3S-VEL-GRY', 2) -> 'total' AS total;
SELECT elfsofa.cart_add(:'c1', 'ELF-CUSHION', 4) -> 'total' AS total;
SELECT elfsofa.cart_checkout(:'c1', '{"method": "promptpay", "amount": 3580.00}') - 'order_id' - 'order_number' - 'cart_id' AS checkout;
-- the order holds the cart's lines at catalog prices; stock is reserved; the cart is checked out and kept
SELECT o.status, o.payment_method, o.total, o.idempotency_key ~ '^cart-[0-9]+$' AS cart_key,
       (SELECT string_agg(l.sku || ' x' || l.quantity, ', ' ORDER BY l.sku) FROM elfsofa.order_lines l WHERE l.order_id = o.id) AS lines
  FROM elfsofa.orders o;
SELECT elfsofa.available('ELF-3S-VEL-GRY') AS grey_left, elfsofa.available('ELF-CUSHION') AS cushions_left;
SELECT c.status, c.order_id = o.id AS linked, c.closed_at IS NOT NULL AS closed,
       (SELECT count(*) FROM elfsofa.cart_items i WHERE i.cart_id = c.id) AS items_kept
  FROM elfsofa.carts c JOIN elfsofa.orders o ON o.customer_id = c.customer_id;
SELECT topic FROM elfsofa.events WHERE topic LIKE 'order.%' ORDER BY id;
-- the customer's cart is now empty: checking out again is refused, a new add opens a new cart
SELECT elfsofa.cart_checkout(:'c1');
:err
SELECT (elfsofa.cart_add(:'c1', 'ELF-CUSHION', 1) ->> 'item_count') AS new_cart_items;
SELECT status, count(*) FROM elfsofa.carts GROUP BY 1 ORDER BY 1;

-- failures roll everything back: the cart stays open with its items, no order, no stock taken
SELECT elfsofa.cart_add(:'c2', 'ELF-3S-VEL-GRY', 2) -> 'item_count' AS items;
SELECT elfsofa.cart_checkout(:'c2');
:err
SELECT elfsofa.cart_checkout(:'c2', '{"method": "card", "amount": 1.00}');
:err
SELECT elfsofa.cart_checkout(:'c2', '{"method": "cheque"}');
:err
SELECT count(*) AS orders FROM elfsofa.orders;
SELECT status, (SELECT sum(quantity) FROM elfsofa.cart_items i WHERE i.cart_id = c.id) AS units
  FROM elfsofa.carts c WHERE customer_id = :'c2';
SELECT elfsofa.available('ELF-3S-VEL-GRY') AS grey_left;
-- after taking one out it fits
SELECT elfsofa.cart_remove(:'c2', 'ELF-3S-VEL-GRY', 1) -> 'item_count' AS items;
SELECT elfsofa.cart_checkout(:'c2') ->> 'total' AS total;
SELECT elfsofa.available('ELF-3S-VEL-GRY') AS grey_left;

-- rejections before anything is tried
SELECT elfsofa.cart_checkout('00000000-0000-4000-8000-000000000000');
:err
SELECT elfsofa.cart_checkout(NULL);
:err
INSERT INTO elfsofa.customers (id, email) VALUES ('c0000000-0000-4000-8000-000000000003', 'niran@example.com');
SELECT elfsofa.cart_checkout('c0000000-0000-4000-8000-000000000003');
:err
SELECT count(*) AS orders FROM elfsofa.orders;
SELECT * FROM elfsofa.cart_conversion(now() - interval '1 hour', now() + interval '1 hour');
