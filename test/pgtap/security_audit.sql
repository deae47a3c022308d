-- pgTAP: auditing the auditing (red-team findings 8, 9 and 12).
--  8. service_role cannot write audit_log (insert, update or delete);
--  9. switching auditing off or on (disable_audit/enable_audit, or the audit
--     trigger altered or dropped), detaching, attaching or dropping a
--     partition of an audited table are audit rows themselves, with who and
--     when; writes in session_replication_role = replica are audited (the
--     triggers fire ALWAYS) unless a superuser turned that off;
-- 12. enable_audit on a table covers its inheritance children, also ones
--     made later.
\set QUIET 1
BEGIN;
SELECT plan(30);
\i test/supabase_roles.sql
SELECT elfsofa.grant_api() IS NOT NULL AS granted \gset
\i test/pgtap_probe.sql
GRANT EXECUTE ON FUNCTION pg_temp.probe(text, text, text) TO PUBLIC;

-- who acts: the shop's operator, through elfsofa.actor
SELECT set_config('elfsofa.actor', 'ops:somchai', true) IS NOT NULL AS actor_set \gset
-- the events of the audit log after a mark: operation and new_data
CREATE FUNCTION pg_temp.events_since(m bigint) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(table_name || ' ' || operation || coalesce(' ' || new_data::text, '') ORDER BY id), '{}')
      FROM elfsofa.audit_log
     WHERE id > m AND operation NOT IN ('INSERT', 'UPDATE', 'DELETE')
$$;

-- 8. service_role reads the audit log but cannot write it
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}',
          $$INSERT INTO elfsofa.audit_log (logged_at, txid, actor, db_user, schema_name, table_name, operation)
            VALUES (now() - interval '1 year', 1, 'forger', 'x', 'public', 't', 'INSERT')$$),
          '42501', 'service_role cannot insert forged, back-dated audit rows');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}',
          $$UPDATE elfsofa.audit_log SET actor = 'someone else'$$),
          '42501', 'service_role cannot rewrite audit rows');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}', $$DELETE FROM elfsofa.audit_log$$),
          '42501', 'service_role cannot delete audit rows');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}', $$SET elfsofa.audit_replica_writes = off$$),
          '42501', 'nor turn off the audit of replica-mode writes (a superuser setting)');

-- 9. enable_audit / disable_audit and the audit triggers themselves
CREATE TABLE public.sa_notes (id int PRIMARY KEY, body text, secret text);
SELECT coalesce(max(id), 0) AS m FROM elfsofa.audit_log \gset
SELECT elfsofa.enable_audit('public.sa_notes', ARRAY['secret']);
INSERT INTO public.sa_notes VALUES (1, 'first', 's1');
SELECT elfsofa.disable_audit('public.sa_notes') AS disabled \gset
INSERT INTO public.sa_notes VALUES (2, 'unaudited', 's2');
SELECT elfsofa.enable_audit('public.sa_notes');
SELECT is(pg_temp.events_since(:m),
          ARRAY['sa_notes ENABLE AUDIT {"exclude_columns": ["secret"]}',
                'sa_notes DISABLE AUDIT',
                'sa_notes ENABLE AUDIT {"exclude_columns": []}'],
          'enable_audit and disable_audit each write an audit row, with the excluded columns');
SELECT is((SELECT array_agg(DISTINCT actor || '/' || db_user || '/' || (logged_at = now())::text)
             FROM elfsofa.audit_log WHERE id > :m AND operation LIKE '% AUDIT'),
          ARRAY['ops:somchai/' || current_user || '/true'],
          'they record who (actor, database user) and when');
SELECT is((SELECT count(*) FROM elfsofa.audit_log WHERE id > :m AND table_name = 'sa_notes' AND operation = 'INSERT'),
          1::bigint, 'the insert made while auditing was off has no row of its own: the gap is visible instead');
SELECT is((SELECT array_agg(tgenabled::text ORDER BY tgname) FROM pg_trigger
            WHERE tgrelid = 'public.sa_notes'::regclass AND tgname LIKE 'elfsofa_audit%'),
          ARRAY['A', 'A'], 'the audit triggers fire ALWAYS (in replica mode too)');

SELECT coalesce(max(id), 0) AS m FROM elfsofa.audit_log \gset
ALTER TABLE public.sa_notes DISABLE TRIGGER elfsofa_audit;
INSERT INTO public.sa_notes VALUES (3, 'trigger off', 's3');
ALTER TABLE public.sa_notes ENABLE TRIGGER elfsofa_audit;
ALTER TABLE public.sa_notes DISABLE TRIGGER ALL;
ALTER TABLE public.sa_notes ENABLE ALWAYS TRIGGER elfsofa_audit, ENABLE ALWAYS TRIGGER elfsofa_audit_truncate;
SELECT is(pg_temp.events_since(:m),
          ARRAY['sa_notes DISABLE AUDIT {"fires": "never", "trigger": "elfsofa_audit"}',
                'sa_notes ENABLE AUDIT {"fires": "origin", "trigger": "elfsofa_audit"}',
                'sa_notes DISABLE AUDIT {"fires": "never", "trigger": "elfsofa_audit"}',
                'sa_notes DISABLE AUDIT {"fires": "never", "trigger": "elfsofa_audit_truncate"}',
                'sa_notes ENABLE AUDIT {"fires": "always", "trigger": "elfsofa_audit"}',
                'sa_notes ENABLE AUDIT {"fires": "always", "trigger": "elfsofa_audit_truncate"}'],
          'ALTER TABLE ... DISABLE / ENABLE TRIGGER of an audit trigger (by name or ALL) is recorded');
SELECT coalesce(max(id), 0) AS m FROM elfsofa.audit_log \gset
DROP TRIGGER elfsofa_audit ON public.sa_notes;
SELECT is(pg_temp.events_since(:m),
          ARRAY['sa_notes DISABLE AUDIT {"fires": "dropped", "trigger": "elfsofa_audit"}'],
          'DROP TRIGGER of the audit trigger is recorded');
SELECT elfsofa.disable_audit('public.sa_notes') AS disabled \gset

-- 9. partitions of an audited table: detach, edit, re-attach, drop
CREATE TABLE public.sa_ledger (id int, at date, amount numeric, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.sa_ledger_2025 PARTITION OF public.sa_ledger FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE public.sa_ledger_2026 PARTITION OF public.sa_ledger FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT elfsofa.enable_audit('public.sa_ledger');
INSERT INTO public.sa_ledger VALUES (1, '2025-03-01', 100), (2, '2026-03-01', 200);
SELECT coalesce(max(id), 0) AS m FROM elfsofa.audit_log \gset
ALTER TABLE public.sa_ledger DETACH PARTITION public.sa_ledger_2025;
UPDATE public.sa_ledger_2025 SET amount = 1;
ALTER TABLE public.sa_ledger ATTACH PARTITION public.sa_ledger_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
TRUNCATE public.sa_ledger_2026;
DROP TABLE public.sa_ledger_2026;
SELECT is(pg_temp.events_since(:m),
          ARRAY['sa_ledger DETACH PARTITION {"partition": "public.sa_ledger_2025"}',
                'sa_ledger ATTACH PARTITION {"partition": "public.sa_ledger_2025"}',
                'sa_ledger TRUNCATE {"partition": "public.sa_ledger_2026"}',
                'sa_ledger DROP PARTITION {"partition": "public.sa_ledger_2026"}'],
          'detaching, re-attaching, truncating and dropping a partition of an audited table are recorded');
SELECT is((SELECT array_agg(DISTINCT actor || '/' || (logged_at = now())::text)
             FROM elfsofa.audit_log WHERE id > :m),
          ARRAY['ops:somchai/true'], 'with who and when');
SELECT is((SELECT count(*) FROM elfsofa.audit_log WHERE id > :m AND operation = 'UPDATE'), 0::bigint,
          'the edit of the detached partition is not a row change of the audited table (the detach says why)');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}',
          $$ALTER TABLE public.sa_ledger DETACH PARTITION public.sa_ledger_2025$$),
          '42501', 'service_role cannot detach a partition of a table it does not own');
SELECT elfsofa.disable_audit('public.sa_ledger') AS disabled \gset

-- 9. session_replication_role = replica: the audit triggers still fire
CREATE TABLE public.sa_stock (sku text PRIMARY KEY, qty int);
CREATE TABLE public.sa_parts (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE public.sa_parts_n PARTITION OF public.sa_parts FOR VALUES IN ('n');
SELECT elfsofa.enable_audit('public.sa_stock');
SELECT elfsofa.enable_audit('public.sa_parts');
CREATE TABLE public.sa_parts_s PARTITION OF public.sa_parts FOR VALUES IN ('s');
SELECT coalesce(max(id), 0) AS m FROM elfsofa.audit_log \gset
SELECT set_config('session_replication_role', 'replica', true) AS srr \gset
INSERT INTO public.sa_stock VALUES ('A', 5);
UPDATE public.sa_stock SET qty = 0;
INSERT INTO public.sa_parts VALUES (1, 'n'), (2, 's');
SELECT is((SELECT array_agg(table_name || ' ' || operation ORDER BY id) FROM elfsofa.audit_log WHERE id > :m),
          ARRAY['sa_stock INSERT', 'sa_stock UPDATE', 'sa_parts INSERT', 'sa_parts INSERT'],
          'writes in replica mode are audited, in partitions made after enable_audit too');
SELECT is((SELECT actor FROM elfsofa.audit_log WHERE id > :m ORDER BY id LIMIT 1), 'ops:somchai',
          'by whom, as any other write');
SELECT is((SELECT array_agg(DISTINCT tgenabled::text) FROM pg_trigger
            WHERE tgrelid = 'public.sa_parts_s'::regclass AND tgname = 'elfsofa_audit'),
          ARRAY['A'], 'a partition made later gets the ALWAYS audit trigger');
-- a superuser's bulk load may turn it off (as a restore of a dump does)
SELECT coalesce(max(id), 0) AS m FROM elfsofa.audit_log \gset
SELECT set_config('elfsofa.audit_replica_writes', 'off', true) AS arw \gset
INSERT INTO public.sa_stock VALUES ('B', 5);
SELECT is((SELECT count(*) FROM elfsofa.audit_log WHERE id > :m), 0::bigint,
          'with elfsofa.audit_replica_writes off (superuser only) replica-mode writes are not audited');
SELECT set_config('session_replication_role', 'origin', true) AS srr \gset
INSERT INTO public.sa_stock VALUES ('C', 5);
SELECT is((SELECT count(*) FROM elfsofa.audit_log WHERE id > :m), 1::bigint,
          'the setting does nothing outside replica mode');
SELECT set_config('elfsofa.audit_replica_writes', 'on', true) AS arw \gset
SELECT elfsofa.disable_audit('public.sa_stock') AS disabled \gset
SELECT elfsofa.disable_audit('public.sa_parts') AS disabled \gset

-- 12. inheritance children are audited with their parent
CREATE TABLE public.sa_vehicles (id int PRIMARY KEY, plate text, note text);
CREATE TABLE public.sa_trucks (axles int) INHERITS (public.sa_vehicles);
ALTER TABLE public.sa_trucks ADD PRIMARY KEY (id);
CREATE TABLE public.sa_vans () INHERITS (public.sa_vehicles);
SELECT throws_ok($$SELECT elfsofa.enable_audit('public.sa_vehicles', ARRAY['note'])$$,
                 '55000', NULL, 'a child without a primary key: enable_audit on the parent is refused (55000)');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgname = 'elfsofa_audit'
            AND tgrelid IN ('public.sa_vehicles'::regclass, 'public.sa_trucks'::regclass)), 0::bigint,
          'and nothing is attached');
SELECT throws_like($$SELECT elfsofa.enable_audit('public.sa_vehicles')$$,
                   '%sa_vans has no primary key%', 'the error names the child');
ALTER TABLE public.sa_vans ADD PRIMARY KEY (id);
SELECT coalesce(max(id), 0) AS m FROM elfsofa.audit_log \gset
SELECT elfsofa.enable_audit('public.sa_vehicles', ARRAY['note']);
INSERT INTO public.sa_vehicles VALUES (1, 'AB-1', 'n');
INSERT INTO public.sa_trucks VALUES (2, 'TR-2', 'secret note', 3);
INSERT INTO public.sa_vans VALUES (3, 'VN-3', 'x');
UPDATE public.sa_vehicles SET plate = plate || '!';
SELECT is((SELECT array_agg(table_name || ' ' || operation ORDER BY id) FROM elfsofa.audit_log
            WHERE id > :m AND operation IN ('INSERT', 'UPDATE')),
          ARRAY['sa_vehicles INSERT', 'sa_trucks INSERT', 'sa_vans INSERT',
                'sa_vehicles UPDATE', 'sa_trucks UPDATE', 'sa_vans UPDATE'],
          'rows of the inheritance children are audited, under the child''s name');
SELECT is((SELECT count(*) FROM elfsofa.audit_log WHERE id > :m AND new_data::text LIKE '%secret note%'), 0::bigint,
          'with the parent''s excluded columns excluded');
SELECT is(pg_temp.events_since(:m),
          ARRAY['sa_vehicles ENABLE AUDIT {"exclude_columns": ["note"]}',
                'sa_trucks ENABLE AUDIT {"via": "public.sa_vehicles", "exclude_columns": ["note"]}',
                'sa_vans ENABLE AUDIT {"via": "public.sa_vehicles", "exclude_columns": ["note"]}'],
          'one ENABLE AUDIT row per table, the children''s naming the parent');
-- children made later are audited too; one without a primary key is refused
SELECT coalesce(max(id), 0) AS m FROM elfsofa.audit_log \gset
CREATE TABLE public.sa_buses (seats int, PRIMARY KEY (id)) INHERITS (public.sa_vehicles);
CREATE TABLE public.sa_carts (id int PRIMARY KEY, plate text, note text);
ALTER TABLE public.sa_carts INHERIT public.sa_vehicles;
INSERT INTO public.sa_buses VALUES (4, 'BU-4', 'secret note', 40);
INSERT INTO public.sa_carts VALUES (5, 'CA-5', 'secret note');
SELECT is((SELECT array_agg(table_name || ' ' || operation || coalesce(' ' || new_data::text, '') ORDER BY id)
             FROM elfsofa.audit_log WHERE id > :m),
          ARRAY['sa_buses ENABLE AUDIT {"via": "public.sa_vehicles", "exclude_columns": ["note"]}',
                'sa_carts ENABLE AUDIT {"via": "public.sa_vehicles", "exclude_columns": ["note"]}',
                'sa_buses INSERT {"id": 4, "plate": "BU-4", "seats": 40}',
                'sa_carts INSERT {"id": 5, "plate": "CA-5"}'],
          'CREATE TABLE ... INHERITS and ALTER TABLE ... INHERIT of an audited table audit the new child');
SELECT throws_ok($$CREATE TABLE public.sa_bikes () INHERITS (public.sa_vehicles)$$, '55000', NULL,
                 'a new child without a primary key is refused (55000)');
SELECT is(elfsofa.disable_audit('public.sa_vehicles'), true, 'disable_audit on the parent');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'elfsofa_audit%'
            AND tgrelid IN ('public.sa_vehicles'::regclass, 'public.sa_trucks'::regclass, 'public.sa_vans'::regclass,
                            'public.sa_buses'::regclass, 'public.sa_carts'::regclass)),
          0::bigint, 'removes the children''s triggers too');
-- partitions are covered through the parent's cloned triggers
SELECT elfsofa.enable_audit('public.sa_parts');
SELECT coalesce(max(id), 0) AS m FROM elfsofa.audit_log \gset
INSERT INTO public.sa_parts_s VALUES (9, 's');
SELECT is((SELECT array_agg(table_name || ' ' || operation) FROM elfsofa.audit_log WHERE id > :m),
          ARRAY['sa_parts INSERT'], 'a row written straight into a partition is audited under the partitioned table');

SELECT * FROM finish();
ROLLBACK;
