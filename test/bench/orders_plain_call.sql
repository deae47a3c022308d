\set c random(1, 1000)
\set s1 random(1, :nsku)
\set s2 (:s1 % :nsku) + 1
SELECT plainshop.process_order(jsonb_build_object('customer_id', md5('c' || :c)::uuid, 'items', jsonb_build_array(jsonb_build_object('sku', 'B-' || :s1, 'quantity', 1), jsonb_build_object('sku', 'B-' || :s2, 'quantity', 2))));
