-- Rate limits: rate_limit() token buckets in shared memory (the test server
-- preloads elfsofa) and in the table fallback, and api_guard() as PostgREST's
-- db-pre-request hook, per JWT sub and per client IP.
\i test/regress_setup.sql
\i test/supabase_roles.sql
SELECT elfsofa.rate_limit_reset() >= 0 AS reset;

-- bad arguments are 22023
SELECT elfsofa.rate_limit(NULL, 1, '1 second');
:err
SELECT elfsofa.rate_limit('', 1, '1 second');
:err
SELECT elfsofa.rate_limit(repeat('x', 201), 1, '1 second');
:err
SELECT elfsofa.rate_limit('b', 0, '1 second');
:err
SELECT elfsofa.rate_limit('b', NULL, '1 second');
:err
SELECT elfsofa.rate_limit('b', 1, '0 seconds');
:err
SELECT elfsofa.rate_limit('b', 1, '1 month');
:err
SELECT elfsofa.rate_limit('b', 1, NULL);
:err

-- shared memory: 3 per 2 seconds trips on the 4th call and recovers after 2/3 s
SHOW elfsofa.rate_limit_store;
SELECT array_agg(elfsofa.rate_limit('rt-shm', 3, '2 seconds') ORDER BY i) AS calls FROM generate_series(1, 5) i;
SELECT elfsofa.rate_limit('rt-shm-other', 3, '2 seconds') AS other_bucket;
SELECT pg_sleep(0.7);
SELECT elfsofa.rate_limit('rt-shm', 3, '2 seconds') AS after_wait;
SELECT count(*) AS table_rows FROM elfsofa.rate_limits;
-- not transactional: a rolled-back request still counted
BEGIN;
SELECT elfsofa.rate_limit('rt-shm-tx', 1, '1 minute');
ROLLBACK;
SELECT elfsofa.rate_limit('rt-shm-tx', 1, '1 minute') AS after_rollback;
SELECT elfsofa.rate_limit_reset('rt-shm-tx') AS reset_one, elfsofa.rate_limit('rt-shm-tx', 1, '1 minute') AS after_reset;

-- the table store behaves the same, one row per bucket
SET elfsofa.rate_limit_store = 'table';
SELECT array_agg(elfsofa.rate_limit('rt-tab', 3, '2 seconds') ORDER BY i) AS calls FROM generate_series(1, 5) i;
SELECT pg_sleep(0.7);
SELECT elfsofa.rate_limit('rt-tab', 3, '2 seconds') AS after_wait;
SELECT bucket, allowed, tokens < 1 AS empty FROM elfsofa.rate_limits ORDER BY bucket;
-- transactional: a rolled-back request is not counted
BEGIN;
SELECT elfsofa.rate_limit('rt-tab-tx', 1, '1 minute');
ROLLBACK;
SELECT elfsofa.rate_limit('rt-tab-tx', 1, '1 minute') AS after_rollback, elfsofa.rate_limit('rt-tab-tx', 1, '1 minute') AS second;
-- read-only transactions (PostgREST GET) check without taking a token
SELECT elfsofa.rate_limit('rt-ro', 2, '1 minute') AS rw_first;
BEGIN READ ONLY;
SELECT array_agg(elfsofa.rate_limit('rt-ro', 2, '1 minute')) AS read_only_calls FROM generate_series(1, 3);
COMMIT;
SELECT elfsofa.rate_limit('rt-ro', 2, '1 minute') AS rw_second, elfsofa.rate_limit('rt-ro', 2, '1 minute') AS rw_third;
BEGIN READ ONLY;
SELECT elfsofa.rate_limit('rt-ro', 2, '1 minute') AS read_only_when_empty;
COMMIT;
SELECT elfsofa.rate_limit_reset() AS reset_all;
SELECT count(*) AS table_rows FROM elfsofa.rate_limits;
RESET elfsofa.rate_limit_store;

---------------------------------------------------------------------------
-- api_guard(), as PostgREST runs it before every request
---------------------------------------------------------------------------
SET elfsofa.rate_limit_per_minute = 3;
SET elfsofa.rate_limit_anon_per_minute = 2;
-- one request's preamble: role and JWT claims and headers, transaction-local
CREATE FUNCTION pg_temp.request(role text, claims text, headers text DEFAULT '{}') RETURNS text
LANGUAGE sql AS $$
    SELECT set_config('request.jwt.claims', claims, true) || set_config('request.headers', headers, true)
           || set_config('role', role, true)
$$;
\set jwt_ann '{"role":"authenticated","sub":"aaaaaaaa-0000-4000-8000-000000000001"}'
\set jwt_bee '{"role":"service_role","sub":"bbbbbbbb-0000-4000-8000-000000000002"}'
\set ip1 '{"x-forwarded-for":"10.0.0.1, 198.51.100.1"}'
\set ip2 '{"x-forwarded-for":"198.51.100.2"}'
SET SESSION AUTHORIZATION authenticator;

-- Ann: three requests, the fourth is refused, whichever IP she comes from
BEGIN; SELECT pg_temp.request('authenticated', :'jwt_ann', :'ip1') IS NOT NULL AS req, current_user; SELECT elfsofa.api_guard(); COMMIT;
BEGIN; SELECT pg_temp.request('authenticated', :'jwt_ann', :'ip1') IS NOT NULL AS req; SELECT elfsofa.api_guard(); COMMIT;
BEGIN; SELECT pg_temp.request('authenticated', :'jwt_ann', :'ip2') IS NOT NULL AS req; SELECT elfsofa.api_guard(); COMMIT;
BEGIN; SELECT pg_temp.request('authenticated', :'jwt_ann', :'ip2') IS NOT NULL AS req; SELECT elfsofa.api_guard();
:err
COMMIT;
-- Bee has her own bucket; her forged "service_role" claim does not exempt her
BEGIN; SELECT pg_temp.request('authenticated', :'jwt_bee') IS NOT NULL AS req; SELECT elfsofa.api_guard(), elfsofa.api_guard(), elfsofa.api_guard(); COMMIT;
BEGIN; SELECT pg_temp.request('authenticated', :'jwt_bee') IS NOT NULL AS req; SELECT elfsofa.api_guard();
:err
COMMIT;
-- anon is limited per client IP: the last x-forwarded-for entry, the one the
-- trusted proxy appended (elfsofa.rate_limit_client_header, rate_limit_client_hop)
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', :'ip1') IS NOT NULL AS req; SELECT elfsofa.api_guard(), elfsofa.api_guard(); COMMIT;
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', '{"x-forwarded-for":"198.51.100.1"}') IS NOT NULL AS req; SELECT elfsofa.api_guard();
:err
COMMIT;
-- a spoofed first hop, or a cf-connecting-ip the caller sent, changes nothing
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', '{"x-forwarded-for":"203.0.113.9, 198.51.100.1"}') IS NOT NULL AS req; SELECT elfsofa.api_guard();
:err
COMMIT;
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', '{"cf-connecting-ip":"203.0.113.10","x-forwarded-for":"198.51.100.1"}') IS NOT NULL AS req; SELECT elfsofa.api_guard();
:err
COMMIT;
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', :'ip2') IS NOT NULL AS req; SELECT elfsofa.api_guard(), elfsofa.api_guard(); COMMIT;
-- no JWT sub and no usable client address: one shared bucket for all of them
BEGIN; SELECT pg_temp.request('anon', '') IS NOT NULL AS req; SELECT elfsofa.api_guard(), elfsofa.api_guard(); COMMIT;
BEGIN; SELECT pg_temp.request('anon', '') IS NOT NULL AS req; SELECT elfsofa.api_guard();
:err
COMMIT;
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', '{"x-forwarded-for":"not-an-address"}') IS NOT NULL AS req; SELECT elfsofa.api_guard();
:err
COMMIT;
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', '{"x-forwarded-for":" "}') IS NOT NULL AS req; SELECT elfsofa.api_guard();
:err
COMMIT;
RESET SESSION AUTHORIZATION;
-- two proxies that append: the second entry from the right; a shorter header has no address
SET elfsofa.rate_limit_client_hop = 2;
SET SESSION AUTHORIZATION authenticator;
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', '{"x-forwarded-for":"1.1.1.1, 192.0.2.7, 10.9.9.9"}') IS NOT NULL AS req; SELECT elfsofa.api_guard(), elfsofa.api_guard(); COMMIT;
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', '{"x-forwarded-for":"192.0.2.7,10.9.9.8"}') IS NOT NULL AS req; SELECT elfsofa.api_guard();
:err
COMMIT;
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', '{"x-forwarded-for":"192.0.2.8"}') IS NOT NULL AS req; SELECT elfsofa.api_guard();
:err
COMMIT;
RESET SESSION AUTHORIZATION;
RESET elfsofa.rate_limit_client_hop;
-- behind Cloudflare alone: cf-connecting-ip is the trusted header
SET elfsofa.rate_limit_client_header = 'cf-connecting-ip';
SET SESSION AUTHORIZATION authenticator;
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', '{"cf-connecting-ip":"2001:db8::1","x-forwarded-for":"198.51.100.1"}') IS NOT NULL AS req; SELECT elfsofa.api_guard(), elfsofa.api_guard(); COMMIT;
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', '{"cf-connecting-ip":"2001:db8::1"}') IS NOT NULL AS req; SELECT elfsofa.api_guard();
:err
COMMIT;
-- the trusted header is a superuser setting
SET elfsofa.rate_limit_client_header = 'x-anything';
:err
SET elfsofa.rate_limit_client_hop = 3;
:err
RESET SESSION AUTHORIZATION;
SET elfsofa.rate_limit_client_header = 'X-Forwarded-For';
:err
RESET elfsofa.rate_limit_client_header;
SET SESSION AUTHORIZATION authenticator;
-- service_role (BYPASSRLS) is not limited
BEGIN; SELECT pg_temp.request('service_role', '{"role":"service_role","sub":"aaaaaaaa-0000-4000-8000-000000000001"}') IS NOT NULL AS req;
SELECT elfsofa.api_guard(), elfsofa.api_guard(), elfsofa.api_guard(), elfsofa.api_guard(); COMMIT;
RESET SESSION AUTHORIZATION;

-- the same through the table store, which anon writes only through api_guard (SECURITY DEFINER)
SET elfsofa.rate_limit_store = 'table';
SET SESSION AUTHORIZATION authenticator;
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', '{"x-forwarded-for":"192.0.2.50"}') IS NOT NULL AS req; SELECT elfsofa.api_guard(), elfsofa.api_guard(); COMMIT;
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', '{"x-forwarded-for":"192.0.2.50"}') IS NOT NULL AS req; SELECT elfsofa.api_guard();
:err
COMMIT;
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', '{"x-forwarded-for":"192.0.2.50"}') IS NOT NULL AS req; SELECT count(*) FROM elfsofa.rate_limits;
:err
COMMIT;
RESET SESSION AUTHORIZATION;
SELECT bucket, allowed FROM elfsofa.rate_limits ORDER BY bucket;
-- limits of 0 turn the guard off
SET elfsofa.rate_limit_anon_per_minute = 0;
SET SESSION AUTHORIZATION authenticator;
BEGIN; SELECT pg_temp.request('anon', '{"role":"anon"}', '{"x-forwarded-for":"192.0.2.50"}') IS NOT NULL AS req; SELECT elfsofa.api_guard(); COMMIT;
RESET SESSION AUTHORIZATION;
-- request bodies over elfsofa.max_request_bytes are refused before their JSON is parsed
SET elfsofa.max_request_bytes = '64kB';
SET SESSION AUTHORIZATION authenticator;
BEGIN; SELECT pg_temp.request('authenticated', '{"role":"authenticated","sub":"dddddddd-0000-4000-8000-000000000004"}', '{"content-length":"65536"}') IS NOT NULL AS req; SELECT elfsofa.api_guard(); COMMIT;
BEGIN; SELECT pg_temp.request('authenticated', '{"role":"authenticated","sub":"dddddddd-0000-4000-8000-000000000004"}', '{"content-length":"65537"}') IS NOT NULL AS req; SELECT elfsofa.api_guard();
:err
COMMIT;
BEGIN; SELECT pg_temp.request('authenticated', '{"role":"authenticated","sub":"dddddddd-0000-4000-8000-000000000004"}', '{"content-length":"1e9"}') IS NOT NULL AS req; SELECT elfsofa.api_guard();
:err
COMMIT;
BEGIN; SELECT pg_temp.request('service_role', '{"role":"service_role"}', '{"content-length":"10000000"}') IS NOT NULL AS req; SELECT elfsofa.api_guard(); COMMIT;
RESET SESSION AUTHORIZATION;
RESET elfsofa.max_request_bytes;
-- the limits are superuser settings: a request cannot raise its own
SET SESSION AUTHORIZATION authenticator;
SET elfsofa.rate_limit_per_minute = 1000000;
:err
RESET SESSION AUTHORIZATION;
