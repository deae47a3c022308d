-- test/reliability/invariants.sql — what must hold in the shop whatever
-- happened (crash, soak, restore, replication).  One row per invariant:
-- name|number of violations.  0 everywhere = the shop is consistent.
WITH
ledger AS (
    SELECT product_id, location, sum(delta_on_hand) AS on_hand, sum(delta_reserved) AS reserved
      FROM elfsofa.stock_ledger GROUP BY 1, 2
),
open_lines AS (   -- what open orders hold: reserved stock
    SELECT l.product_id, l.location, sum(l.quantity) AS q
      FROM elfsofa.order_lines l
      JOIN elfsofa.orders o ON o.id = l.order_id AND o.created_at = l.created_at
     WHERE o.status IN ('pending', 'confirmed', 'packed')
     GROUP BY 1, 2
)
SELECT 'stock_levels equal the sums of the stock ledger',
       count(*) FROM elfsofa.stock_levels s FULL JOIN ledger g USING (product_id, location)
 WHERE s.on_hand IS DISTINCT FROM g.on_hand OR s.reserved IS DISTINCT FROM g.reserved
UNION ALL
SELECT 'no negative stock, reserved within on hand',
       count(*) FROM elfsofa.stock_levels WHERE on_hand < 0 OR reserved < 0 OR reserved > on_hand
UNION ALL
SELECT 'reserved stock equals the lines of open orders',
       count(*) FROM elfsofa.stock_levels s FULL JOIN open_lines o USING (product_id, location)
 WHERE coalesce(s.reserved, 0) <> coalesce(o.q, 0)
UNION ALL
SELECT 'every order has lines',
       count(*) FROM elfsofa.orders o
 WHERE NOT EXISTS (SELECT 1 FROM elfsofa.order_lines l WHERE l.order_id = o.id AND l.created_at = o.created_at)
UNION ALL
SELECT 'order total equals the sum of its lines',
       count(*) FROM elfsofa.orders o
 WHERE o.total <> (SELECT coalesce(sum(line_total), 0) FROM elfsofa.order_lines l WHERE l.order_id = o.id AND l.created_at = o.created_at)
UNION ALL
SELECT 'every order has a reserve ledger row per line',
       count(*) FROM elfsofa.order_lines l
 WHERE NOT EXISTS (SELECT 1 FROM elfsofa.stock_ledger g WHERE g.order_id = l.order_id AND g.product_id = l.product_id AND g.reason = 'reserve')
UNION ALL
SELECT 'every ledger row with an order points at a real order',
       count(*) FROM elfsofa.stock_ledger g
 WHERE g.order_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM elfsofa.orders o WHERE o.id = g.order_id)
UNION ALL
SELECT 'every order has a payment',
       count(*) FROM elfsofa.orders o WHERE NOT EXISTS (SELECT 1 FROM elfsofa.payments p WHERE p.order_id = o.id)
UNION ALL
SELECT 'every order has one order.created event',
       count(*) FROM elfsofa.orders o
       LEFT JOIN (SELECT key, count(*) AS n FROM elfsofa.events WHERE topic = 'order.created' GROUP BY key) e
              ON e.key = o.id::text
 WHERE coalesce(e.n, 0) <> 1
UNION ALL
SELECT 'every order.created event points at a real order',
       count(*) FROM elfsofa.events e
 WHERE e.topic = 'order.created' AND NOT EXISTS (SELECT 1 FROM elfsofa.orders o WHERE o.id::text = e.key)
UNION ALL
SELECT 'every idempotency key points at a real order of its customer',
       count(*) FROM elfsofa.idempotency_keys k
 WHERE NOT EXISTS (SELECT 1 FROM elfsofa.orders o WHERE o.id = k.order_id AND o.customer_id = k.customer_id)
UNION ALL
SELECT 'order ids are unique',
       count(*) FROM (SELECT id FROM elfsofa.orders GROUP BY id HAVING count(*) > 1) d;

-- Audit (src/sql/40_audit.sql audits orders from CREATE EXTENSION on): each
-- order has its INSERT audit row, and no audit row names an order that is not
-- there (the audit row commits with the order or not at all).
SELECT to_regclass('elfsofa.audit_log') IS NOT NULL
       AND EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'elfsofa.orders'::regclass AND NOT tgisinternal
                      AND tgfoid = to_regproc('elfsofa.audit_trigger')) AS rel_has_audit \gset
\if :rel_has_audit
SELECT 'every order has its INSERT audit row',
       count(*) FROM elfsofa.orders o
 WHERE NOT EXISTS (SELECT 1 FROM elfsofa.audit_log a
                    WHERE a.table_name = 'orders' AND a.operation = 'INSERT' AND a.pk->>'id' = o.id::text)
UNION ALL
SELECT 'every order audit row points at a real order',
       count(*) FROM elfsofa.audit_log a
 WHERE a.table_name = 'orders' AND a.pk IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM elfsofa.orders o WHERE a.pk->>'id' = o.id::text);
\endif
