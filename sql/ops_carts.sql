-- Carts: cart_add / cart_remove / abandon_carts, successes and rejections.
\i test/regress_setup.sql

INSERT INTO elfsofa.products (sku, name, price) VALUES
  ('ELF-3S-VEL-GRY', '3-seat cover, grey velvet', 1490.00),
  ('ELF-2S-SPX-BEI', '2-seat cover, beige spandex', 890.00),
  ('ELF-OLD', 'discontinued cover', 100.00);
UPDATE elfsofa.products SET is_active = false WHERE sku = 'ELF-OLD';
-- fixed ids keep the error details stable
INSERT INTO elfsofa.customers (id, email, full_name) VALUES
  ('c0000000-0000-4000-8000-000000000001', 'somchai@example.com', 'Somchai'),
  ('c0000000-0000-4000-8000-000000000002', 'malee@example.com', 'Malee'),
  ('c0000000-0000-4000-8000-000000000003', 'niran@example.com', 'Niran');
\set c1 c0000000-0000-4000-8000-000000000001
\set c2 c0000000-0000-4000-8000-000000000002
\set c3 c0000000-0000-4000-8000-000000000003

-- the first add opens a cart; adding the same sku again adds to the line
SELECT elfsofa.cart_add(:'c1', 'ELF-3S-VEL-GRY', 1) - 'cart_id' - 'customer_id' AS cart;
SELECT elfsofa.cart_add(:'c1', 'ELF-3S-VEL-GRY', 2) -> 'items' AS items;
SELECT elfsofa.cart_add(:'c1', 'ELF-2S-SPX-BEI', 1) - 'cart_id' - 'customer_id' AS cart;
-- one open cart per customer; another customer gets their own
SELECT (elfsofa.cart_add(:'c2', 'ELF-2S-SPX-BEI', 4) ->> 'total')::numeric AS c2_total;
SELECT customer_id = :'c1' AS is_c1, status, count(*) OVER () AS carts FROM elfsofa.carts ORDER BY id;
-- prices are the catalog's at the time the cart is read
UPDATE elfsofa.products SET price = 990.00 WHERE sku = 'ELF-2S-SPX-BEI';
SELECT elfsofa.cart_add(:'c1', 'ELF-2S-SPX-BEI', 1) -> 'total' AS total_after_price_change;

-- remove some units, then the whole line (NULL quantity), then more than is left clamps to the line
SELECT elfsofa.cart_remove(:'c1', 'ELF-3S-VEL-GRY', 1) -> 'items' AS items;
SELECT elfsofa.cart_remove(:'c1', 'ELF-2S-SPX-BEI') -> 'items' AS items;
SELECT elfsofa.cart_remove(:'c1', 'ELF-3S-VEL-GRY', 50) - 'cart_id' - 'customer_id' AS emptied;
-- the emptied cart stays open and is reused
SELECT (elfsofa.cart_add(:'c1', 'ELF-3S-VEL-GRY', 1) ->> 'cart_id')::bigint = min(id) AS same_cart
  FROM elfsofa.carts WHERE customer_id = :'c1';

-- rejections: each is refused and changes nothing
SELECT elfsofa.cart_add('00000000-0000-4000-8000-000000000000', 'ELF-3S-VEL-GRY', 1);
:err
SELECT elfsofa.cart_add(:'c1', 'ELF-NOPE', 1);
:err
SELECT elfsofa.cart_add(:'c1', 'ELF-OLD', 1);
:err
SELECT elfsofa.cart_add(NULL, 'ELF-3S-VEL-GRY', 1);
:err
SELECT elfsofa.cart_add(:'c1', NULL, 1);
:err
SELECT elfsofa.cart_add(:'c1', 'ELF-3S-VEL-GRY', 0);
:err
SELECT elfsofa.cart_add(:'c1', 'ELF-3S-VEL-GRY', -2);
:err
SELECT elfsofa.cart_add(:'c1', 'ELF-3S-VEL-GRY', NULL);
:err
SELECT elfsofa.cart_add(:'c1', 'ELF-3S-VEL-GRY', 100000);
:err
SELECT elfsofa.cart_remove(:'c1', 'ELF-2S-SPX-BEI', 1);
:err
SELECT elfsofa.cart_remove(:'c1', 'ELF-NOPE');
:err
SELECT elfsofa.cart_remove('00000000-0000-4000-8000-000000000000', 'ELF-3S-VEL-GRY');
:err
SELECT elfsofa.cart_remove(:'c1', 'ELF-3S-VEL-GRY', 0);
:err
-- a customer with no cart at all
SELECT elfsofa.cart_remove(:'c3', 'ELF-3S-VEL-GRY');
:err
SELECT count(*) AS carts, (SELECT sum(quantity) FROM elfsofa.cart_items) AS units FROM elfsofa.carts;
SELECT p.sku, ci.quantity FROM elfsofa.cart_items ci JOIN elfsofa.products p ON p.id = ci.product_id ORDER BY 1, 2;

-- abandoning: only carts idle longer than the interval; their items are kept
UPDATE elfsofa.carts SET updated_at = now() - interval '4 days' WHERE customer_id = :'c2';
SELECT elfsofa.abandon_carts(interval '5 days') AS none_yet;
SELECT elfsofa.abandon_carts() AS abandoned_after_72h;
SELECT customer_id = :'c2' AS is_c2, status, closed_at IS NOT NULL AS closed FROM elfsofa.carts ORDER BY id;
SELECT count(*) AS kept_items FROM elfsofa.cart_items ci JOIN elfsofa.carts c ON c.id = ci.cart_id WHERE c.status = 'abandoned';
-- the customer's next add opens a fresh cart
SELECT elfsofa.cart_add(:'c2', 'ELF-3S-VEL-GRY', 1) -> 'item_count' AS new_cart_items;
SELECT status, count(*) FROM elfsofa.carts WHERE customer_id = :'c2' GROUP BY 1 ORDER BY 1;
SELECT elfsofa.abandon_carts(interval '-1 day');
:err
SELECT elfsofa.abandon_carts(interval '0');
:err

-- a signed-in shopper (JWT sub linked to c1) as an unprivileged role: NULL means "my cart";
-- someone else's cart is refused (the role is dropped at the end, nothing leaks to other tests)
CREATE ROLE ops_test_shopper NOLOGIN;
GRANT USAGE ON SCHEMA elfsofa TO ops_test_shopper;
GRANT EXECUTE ON FUNCTION elfsofa.cart_add(uuid, text, integer), elfsofa.cart_get(uuid),
      elfsofa.cart_remove(uuid, text, integer), elfsofa.current_customer_id() TO ops_test_shopper;
GRANT USAGE ON SCHEMA elfsofa_internal TO ops_test_shopper;  -- the wrappers call the SECURITY DEFINER bodies there
GRANT EXECUTE ON FUNCTION elfsofa_internal.cart_add(uuid, text, integer), elfsofa_internal.cart_get(uuid),
      elfsofa_internal.cart_remove(uuid, text, integer), elfsofa_internal.current_customer_id() TO ops_test_shopper;
GRANT SELECT ON elfsofa.carts TO ops_test_shopper;
UPDATE elfsofa.customers SET auth_user_id = 'a0000000-0000-4000-8000-00000000000a' WHERE id = :'c1';
BEGIN;
SET LOCAL ROLE ops_test_shopper;
SELECT set_config('request.jwt.claims', '{"sub": "a0000000-0000-4000-8000-00000000000a", "role": "authenticated"}', true) IS NOT NULL AS signed_in;
SELECT elfsofa.cart_add(NULL, 'ELF-2S-SPX-BEI', 1) -> 'items' AS my_items;
SELECT elfsofa.cart_get() -> 'item_count' AS my_count;
SELECT elfsofa.cart_remove(NULL, 'ELF-2S-SPX-BEI') -> 'item_count' AS my_count;
SELECT count(*) AS carts_i_can_see FROM elfsofa.carts;
SAVEPOINT s;
SELECT elfsofa.cart_add(:'c2', 'ELF-2S-SPX-BEI', 1);
:err
ROLLBACK TO s;
SELECT elfsofa.cart_get(:'c2');
:err
ROLLBACK;
-- without a JWT, customer_id is required
SELECT elfsofa.cart_get();
:err
SELECT elfsofa.cart_get(:'c3') - 'customer_id' AS no_cart_yet;
DROP OWNED BY ops_test_shopper;
DROP ROLE ops_test_shopper;
