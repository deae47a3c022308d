-- Customers: upsert_customer(), successes and rejections.
\i test/regress_setup.sql

SELECT elfsofa.upsert_customer('Somchai@Example.com', 'Somchai Jaidee', '+66 81 234 5678') AS id \gset c1_
SELECT email, full_name, phone, auth_user_id FROM elfsofa.customers;
-- same e-mail, other case: same customer, fields filled in, nothing blanked
SELECT elfsofa.upsert_customer('somchai@example.com', NULL, NULL, '6f1c1d2e-0000-4000-8000-000000000001') = :'c1_id' AS same_customer;
SELECT email, full_name, phone, auth_user_id FROM elfsofa.customers;
SELECT elfsofa.upsert_customer('malee@example.com', 'Malee') <> :'c1_id' AS new_customer;
SELECT count(*) FROM elfsofa.customers;

-- rejections: each is refused and writes nothing
SELECT elfsofa.upsert_customer(NULL);
:err
SELECT elfsofa.upsert_customer('not-an-email');
:err
SELECT elfsofa.upsert_customer('a@b@c');
:err
SELECT elfsofa.upsert_customer('x@example.com', NULL, 'call me');
:err
SELECT elfsofa.upsert_customer('x@example.com', repeat('n', 201));
:err
SELECT elfsofa.upsert_customer('malee@example.com', NULL, NULL, '6f1c1d2e-0000-4000-8000-000000000001');
:err
SELECT count(*) FROM elfsofa.customers;
