-- Structured logging: elfsofa.log(level, message, context), successes and rejections.
\i test/regress_setup.sql

SELECT elfsofa.log('info', 'Order processed', '{"order_id": 42, "total": 1780.00}') > 0 AS logged;
SET elfsofa.actor = 'cron:archive';
SELECT elfsofa.log('warn', 'Archive slow') > 0 AS logged_default_context;
SELECT elfsofa.log('error', 'Payment webhook rejected', NULL) > 0 AS logged_null_context;
RESET elfsofa.actor;
-- a Supabase request: the actor is the JWT sub
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "6f1c1d2e-0000-4000-8000-000000000009", "role": "authenticated"}', true) IS NOT NULL AS claims;
SELECT elfsofa.log('debug', 'cart opened', '{"cart": 1}') > 0 AS logged_jwt;
COMMIT;
SELECT level, message, context, actor = current_user AS actor_is_user, actor
  FROM elfsofa.system_logs ORDER BY id;
-- rows land in today's daily partition
SELECT DISTINCT tableoid::regclass::text = 'elfsofa.system_logs_p' || to_char(now(), 'YYYY_MM_DD') AS todays_partition
  FROM elfsofa.system_logs;

-- rejections: each is refused and writes nothing
SELECT elfsofa.log('notice', 'x');
:err
SELECT elfsofa.log('INFO', 'x');
:err
SELECT elfsofa.log(NULL, 'x');
:err
SELECT elfsofa.log('info', NULL);
:err
SELECT elfsofa.log('info', '');
:err
SELECT elfsofa.log('info', repeat('x', 8001));
:err
SELECT elfsofa.log('info', 'x', '[1, 2]');
:err
SELECT elfsofa.log('info', 'x', '"text"');
:err
SELECT elfsofa.log('info', 'x', jsonb_build_object('blob', repeat('x', 70000)));
:err
SELECT count(*) FROM elfsofa.system_logs;
