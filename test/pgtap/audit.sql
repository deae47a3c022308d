-- pgTAP: the audit trail's objects — table, partitions, triggers, functions.
BEGIN;
SELECT plan(41);

SELECT has_table('elfsofa', 'audit_log', 'audit_log exists');
SELECT is((SELECT relkind::text FROM pg_class WHERE oid = 'elfsofa.audit_log'::regclass), 'p', 'audit_log is partitioned');
SELECT is((SELECT pg_get_partkeydef('elfsofa.audit_log'::regclass)), 'RANGE (logged_at)', 'partitioned by range of logged_at');
SELECT ok((SELECT count(*) FROM pg_inherits WHERE inhparent = 'elfsofa.audit_log'::regclass) >= 4,
          'audit_log has the current and next three months');
SELECT has_table('elfsofa', 'audit_log_p' || to_char(now(), 'YYYY_MM'), 'partition for this month');
SELECT has_table('elfsofa', 'audit_log_p' || to_char(now() + interval '3 months', 'YYYY_MM'), 'partition three months ahead');
SELECT columns_are('elfsofa', 'audit_log',
    ARRAY['id', 'logged_at', 'txid', 'actor', 'actor_role', 'db_user', 'application_name', 'schema_name',
          'table_name', 'operation', 'pk', 'old_pk', 'old_data', 'new_data', 'changed_columns'],
    'audit_log columns');
SELECT col_type_is('elfsofa', 'audit_log', 'pk', 'jsonb', 'pk is jsonb');
SELECT col_type_is('elfsofa', 'audit_log', 'changed_columns', 'text[]', 'changed_columns is text[]');
SELECT col_type_is('elfsofa', 'audit_log', 'txid', 'bigint', 'txid is bigint');
SELECT col_not_null('elfsofa', 'audit_log', 'actor', 'actor is never null');
SELECT has_index('elfsofa', 'audit_log', 'audit_log_pk_idx', 'row lookups by key');
SELECT has_sequence('elfsofa', 'audit_log_id_seq', 'id sequence');

SELECT has_function('elfsofa', 'enable_audit', ARRAY['regclass', 'text[]']);
SELECT has_function('elfsofa', 'disable_audit', ARRAY['regclass']);
SELECT has_function('elfsofa', 'audit_history', ARRAY['regclass', 'jsonb']);
SELECT has_function('elfsofa', 'audit_summary', ARRAY['timestamp with time zone', 'timestamp with time zone']);
SELECT function_lang_is('elfsofa', 'enable_audit', ARRAY['regclass', 'text[]'], 'c', 'enable_audit is C');
SELECT function_returns('elfsofa', 'audit_trigger', '{}'::name[], 'trigger', 'audit_trigger returns trigger');
SELECT function_lang_is('elfsofa', 'audit_trigger', 'c', 'audit_trigger is C');
SELECT is((SELECT count(*) FROM pg_proc WHERE pronamespace = 'elfsofa'::regnamespace
             AND proname IN ('enable_audit', 'disable_audit', 'audit_history', 'audit_summary', 'audit_trigger', 'audit_log_guard')
             AND obj_description(oid, 'pg_proc') IS NOT NULL), 6::bigint, 'every audit function has a comment');
SELECT is((SELECT count(*) FROM pg_proc WHERE pronamespace = 'elfsofa'::regnamespace AND proname = 'enable_audit'), 1::bigint,
          'enable_audit is not overloaded');

-- the shop's business tables are audited from installation on
SELECT has_trigger('elfsofa', t, 'elfsofa_audit', t || ' is audited')
  FROM unnest(ARRAY['products', 'stock_levels', 'customers', 'orders', 'order_lines', 'payments', 'shipments']) AS t;
SELECT has_trigger('elfsofa', 'orders', 'elfsofa_audit_truncate', 'orders TRUNCATE is audited');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = 'elfsofa.orders'::regclass
                       AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = i.inhrelid AND g.tgname = 'elfsofa_audit')),
          'every orders partition carries the cloned audit trigger');

-- append-only guard
SELECT has_trigger('elfsofa', 'audit_log', 'audit_log_append_only_stmt', 'statement guard on audit_log');
SELECT has_trigger('elfsofa', 'audit_log', 'audit_log_append_only_row', 'row guard on audit_log (cloned to partitions)');
SELECT throws_ok(format('TRUNCATE elfsofa.%I', 'audit_log_p' || to_char(now(), 'YYYY_MM')), '42501',
                 'audit log is append-only', 'TRUNCATE of a partition refused');

-- behaviour, briefly (the regression test covers it in depth)
SELECT lives_ok($$SET LOCAL elfsofa.actor = 'tap'$$, 'set actor');
SELECT lives_ok($$INSERT INTO elfsofa.products (sku, name, price) VALUES ('TAP-AUD', 'tap cover', 10)$$, 'audited insert');
SELECT is((SELECT actor || ' ' || operation FROM elfsofa.audit_log WHERE table_name = 'products' AND new_data ->> 'sku' = 'TAP-AUD'),
          'tap INSERT', 'insert recorded with actor');
SELECT throws_ok($$UPDATE elfsofa.audit_log SET actor = 'x'$$, '42501', 'audit log is append-only', 'UPDATE refused');
SELECT throws_ok($$DELETE FROM elfsofa.audit_log$$, '42501', 'audit log is append-only', 'DELETE refused');
SELECT throws_ok($$TRUNCATE elfsofa.audit_log$$, '42501', 'audit log is append-only', 'TRUNCATE refused');
SELECT throws_ok($$SELECT elfsofa.enable_audit('elfsofa.products', ARRAY['nope'])$$, '22023', NULL, 'unknown excluded column is 22023');

SELECT * FROM finish();
ROLLBACK;
