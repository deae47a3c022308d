-- CRM: record_interaction() and customer_insights(), successes and rejections.
\i test/regress_setup.sql
\i test/ops_fixture.sql
\set c1 c0000000-0000-4000-8000-000000000001
\set c2 c0000000-0000-4000-8000-000000000002
\set c3 c0000000-0000-4000-8000-000000000003
\set c4 c0000000-0000-4000-8000-000000000004

SELECT elfsofa.record_interaction(:'c1', 'chat', 'line', '{"text": "Does the L cover fit a 280 cm sofa?"}') > 0 AS recorded;
SELECT elfsofa.record_interaction(:'c1', 'complaint', 'phone', '{"order": "ELF-2025-000001", "topic": "late delivery"}') > 0 AS recorded;
SELECT elfsofa.record_interaction(:'c2', 'note', 'store', NULL) > 0 AS recorded_empty_body;
SELECT customer_id = :'c1' AS is_c1, kind, channel, body FROM elfsofa.customer_interactions ORDER BY id;

-- rejections: each is refused and writes nothing
SELECT elfsofa.record_interaction('00000000-0000-4000-8000-000000000000', 'chat', 'line', '{}');
:err
SELECT elfsofa.record_interaction(NULL, 'chat', 'line', '{}');
:err
SELECT elfsofa.record_interaction(:'c1', NULL, 'line', '{}');
:err
SELECT elfsofa.record_interaction(:'c1', '', 'line', '{}');
:err
SELECT elfsofa.record_interaction(:'c1', 'Chat', 'line', '{}');
:err
SELECT elfsofa.record_interaction(:'c1', 'chat', 'LINE app', '{}');
:err
SELECT elfsofa.record_interaction(:'c1', 'chat', repeat('x', 51), '{}');
:err
SELECT elfsofa.record_interaction(:'c1', 'chat', 'line', '["hello"]');
:err
SELECT elfsofa.record_interaction(:'c1', 'chat', 'line', jsonb_build_object('text', repeat('x', 70000)));
:err
SELECT count(*) FROM elfsofa.customer_interactions;

-- c1: six recent orders (one cancelled, one returned): a champion
SELECT ops_test_order(:'c1', now() - interval '3 days', 'delivered', '{"ELF-3S-VEL-GRY": 2, "ELF-CUSHION": 4}') IS NOT NULL AS o
  UNION ALL SELECT ops_test_order(:'c1', now() - interval '10 days', 'shipped', '{"ELF-3S-VEL-GRY": 1}') IS NOT NULL
  UNION ALL SELECT ops_test_order(:'c1', now() - interval '20 days', 'confirmed', '{"ELF-2S-SPX-BEI": 1, "ELF-CUSHION": 2}') IS NOT NULL
  UNION ALL SELECT ops_test_order(:'c1', now() - interval '25 days', 'pending', '{"ELF-L-LIN-NVY": 1}') IS NOT NULL
  UNION ALL SELECT ops_test_order(:'c1', now() - interval '40 days', 'delivered', '{"ELF-3S-VEL-GRY": 3}') IS NOT NULL
  UNION ALL SELECT ops_test_order(:'c1', now() - interval '50 days', 'delivered', '{"ELF-1S-SPX-GRY": 1}') IS NOT NULL
  UNION ALL SELECT ops_test_order(:'c1', now() - interval '1 day', 'cancelled', '{"ELF-L-LIN-NVY": 5}') IS NOT NULL
  UNION ALL SELECT ops_test_order(:'c1', now() - interval '60 days', 'returned', '{"ELF-L-LIN-NVY": 2}') IS NOT NULL;
-- c2: one order 400 days ago: lost;  c3: one order last week: new;  c4: nothing: prospect
SELECT ops_test_order(:'c2', now() - interval '400 days', 'delivered', '{"ELF-2S-SPX-BEI": 1}') IS NOT NULL AS o
  UNION ALL SELECT ops_test_order(:'c3', now() - interval '7 days', 'delivered', '{"ELF-1S-SPX-GRY": 2}') IS NOT NULL;

SELECT jsonb_pretty(elfsofa.customer_insights(:'c1') - 'customer_since' - 'first_order_at' - 'last_order_at' - 'last_interaction_at');
SELECT c.email, i->'orders' AS orders, i->'lifetime_value' AS ltv, i->'average_order' AS avg,
       i->'days_since_last_order' AS days, i->'rfm' AS rfm, jsonb_array_length(i->'favourite_products') AS favs,
       i->'interactions' AS interactions
  FROM elfsofa.customers c, elfsofa.customer_insights(c.id) i ORDER BY c.email;
-- last_order_at is the newest order that counts (the cancelled one a day ago does not)
SELECT (elfsofa.customer_insights(:'c1') ->> 'last_order_at')::timestamptz
       = (SELECT max(created_at) FROM elfsofa.orders WHERE customer_id = :'c1' AND status NOT IN ('cancelled', 'returned')) AS last_order_ok;

SELECT elfsofa.customer_insights('00000000-0000-4000-8000-000000000000');
:err
SELECT elfsofa.customer_insights(NULL);
:err
