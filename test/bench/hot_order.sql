\set c random(1, 1000)
\set s random(1, :nsku)
SELECT elfsofa.process_order(jsonb_build_object('customer_id', md5('c' || :c)::uuid, 'items', jsonb_build_array(jsonb_build_object('sku', 'H-' || :s, 'quantity', 1))));
