\set p random(1, 100)
SELECT elfsofa.process_order('{"customer_id": ":cust", "items": [{"sku": "BENCH-:p", "quantity": 1}]}'::jsonb);
