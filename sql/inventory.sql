-- Stock: restock() and available(), successes and rejections.
\i test/regress_setup.sql
SET elfsofa.actor = 'regress';

INSERT INTO elfsofa.products (sku, name, price) VALUES
  ('ELF-3S-GRY', '3-seat cover, grey velvet', 1290.00),
  ('ELF-L-BLU', 'L-shape cover, blue linen', 2490.00);

-- successes
SELECT elfsofa.restock('ELF-3S-GRY', 10);
SELECT elfsofa.restock('ELF-3S-GRY', 5, 'bangkok', 'first delivery');
SELECT elfsofa.restock('ELF-3S-GRY', 2);
SELECT elfsofa.available('ELF-3S-GRY');
SELECT elfsofa.available('ELF-3S-GRY', 'bangkok');
SELECT elfsofa.available('ELF-3S-GRY', 'chiangmai');
SELECT elfsofa.available('ELF-L-BLU');
SELECT location, on_hand, reserved FROM elfsofa.stock_levels ORDER BY location;
SELECT location, delta_on_hand, delta_reserved, reason, actor, note
  FROM elfsofa.stock_ledger ORDER BY id;

-- rejections: each leaves stock and ledger unchanged
SELECT elfsofa.restock('ELF-3S-GRY', 0);
:err
SELECT elfsofa.restock('ELF-3S-GRY', -3);
:err
SELECT elfsofa.restock('ELF-3S-GRY', 100001);
:err
SELECT elfsofa.restock('ELF-3S-GRY', NULL);
:err
SELECT elfsofa.restock(NULL, 1);
:err
SELECT elfsofa.restock('', 1);
:err
SELECT elfsofa.restock('NO-SUCH-SKU', 1);
:err
SELECT elfsofa.restock('ELF-3S-GRY', 1, 'Bad Location!');
:err
SELECT elfsofa.restock('ELF-3S-GRY', 1, 'main', repeat('x', 1001));
:err
SELECT elfsofa.available('NO-SUCH-SKU');
:err
SELECT elfsofa.available(NULL);
:err
SELECT count(*) AS ledger_rows, sum(delta_on_hand) AS ledger_sum FROM elfsofa.stock_ledger;
SELECT sum(on_hand) AS on_hand FROM elfsofa.stock_levels;

-- adjust_stock: a counted correction of one location, never below what is reserved
SELECT elfsofa.adjust_stock('ELF-3S-GRY', -2, 'main', 'count: 2 damaged');
SELECT elfsofa.adjust_stock('ELF-3S-GRY', 3, 'bangkok');
SELECT location, on_hand, reserved FROM elfsofa.stock_levels ORDER BY location;
SELECT location, delta_on_hand, delta_reserved, reason, actor, note
  FROM elfsofa.stock_ledger WHERE reason = 'adjust' ORDER BY id;
-- every stock change announced with the location's totals after it
SELECT topic, key, data FROM elfsofa.events WHERE topic = 'inventory.updated' ORDER BY id;
-- rejections: each leaves stock, ledger and events unchanged
SELECT elfsofa.adjust_stock('ELF-3S-GRY', 0);
:err
SELECT elfsofa.adjust_stock('ELF-3S-GRY', 100001);
:err
SELECT elfsofa.adjust_stock('ELF-3S-GRY', -100001);
:err
SELECT elfsofa.adjust_stock('ELF-3S-GRY', NULL);
:err
SELECT elfsofa.adjust_stock(NULL, 1);
:err
SELECT elfsofa.adjust_stock('NO-SUCH-SKU', 1);
:err
SELECT elfsofa.adjust_stock('ELF-3S-GRY', 1, 'chiangmai');
:err
SELECT elfsofa.adjust_stock('ELF-3S-GRY', 1, 'Bad Location!');
:err
SELECT elfsofa.adjust_stock('ELF-3S-GRY', 1, 'main', repeat('x', 1001));
:err
SELECT elfsofa.adjust_stock('ELF-3S-GRY', -11);
:err
SELECT elfsofa.adjust_stock('ELF-L-BLU', -1);
:err
SELECT count(*) AS ledger_rows, sum(delta_on_hand) AS ledger_sum FROM elfsofa.stock_ledger;
SELECT sum(on_hand) AS on_hand FROM elfsofa.stock_levels;
SELECT count(*) AS stock_events FROM elfsofa.events WHERE topic = 'inventory.updated';

-- a count that takes available below the low-stock threshold (5) also raises
-- inventory.low_stock, once: not again while it stays below
SELECT elfsofa.adjust_stock('ELF-3S-GRY', -6);
SELECT elfsofa.adjust_stock('ELF-3S-GRY', -1);
SELECT topic, key, data FROM elfsofa.events WHERE topic = 'inventory.low_stock' ORDER BY id;

-- the table itself refuses impossible states
\set VERBOSITY terse
UPDATE elfsofa.stock_levels SET on_hand = -1;
:err
UPDATE elfsofa.stock_levels SET reserved = on_hand + 1;
:err
