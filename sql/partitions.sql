-- Partition manager: registration, alignment, idempotent maintenance,
-- retention (archive and drop), linked sets, failure isolation, hostile
-- names and rejections.  Names and bounds depend on today's date, so the
-- checks compare against values computed here rather than printing them.
\i test/regress_setup.sql

-- elfsofa's own tables are registered at install
SELECT parent, control_column, part_interval, premake, retention, retention_action, retire_with, last_error
  FROM elfsofa.partition_status ORDER BY parent::text;
SELECT parent,
       partitions = premake + 1 AS current_plus_premake,
       reaches_until = CASE WHEN part_interval = '1 month'
                            THEN date_trunc('month', now()) + (premake + 1) * interval '1 month'
                            ELSE date_trunc('day', now()) + (premake + 1) * interval '1 day' END AS reach_ok
  FROM elfsofa.partition_status ORDER BY parent::text;
-- they are not extension members, so pg_dump keeps them and their rows
SELECT count(*) AS member_partitions FROM pg_depend d JOIN pg_inherits i ON i.inhrelid = d.objid
 WHERE d.deptype = 'e' AND d.classid = 'pg_class'::regclass;
SELECT partition_sets_dumped FROM (SELECT 'elfsofa.partition_sets'::regclass = ANY (extconfig) AS partition_sets_dumped
  FROM pg_extension WHERE extname = 'elfsofa') x;
-- orders work right away, and a no-op maintenance does nothing
SELECT (r->>'created')::int AS created, (r->>'retired')::int AS retired, (r->>'errors')::int AS errors
  FROM elfsofa.run_maintenance() r;

-- the daily job body: upkeep of other areas when installed, then maintenance
SELECT (d ? 'purge_idempotency_keys') = (to_regprocedure('elfsofa.purge_idempotency_keys()') IS NOT NULL) AS purge_when_installed,
       (d->'maintenance'->>'errors')::int AS maintenance_errors
  FROM elfsofa.daily_upkeep() d;

CREATE SCHEMA pt;
CREATE FUNCTION pt.parts(t regclass) RETURNS text[] LANGUAGE sql AS
$$ SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = t $$;

-- daily, timestamptz: today and 2 ahead, named _pYYYY_MM_DD, aligned to midnight
CREATE TABLE pt.daily (id bigint, ts timestamptz NOT NULL, v text CHECK (v <> 'bad')) PARTITION BY RANGE (ts);
SELECT jsonb_array_length(elfsofa.partition_table('pt.daily', 'ts', '1 day', 2)->'created') AS created;
SELECT pt.parts('pt.daily') = (SELECT array_agg('daily_p' || to_char(d, 'YYYY_MM_DD') ORDER BY d)
         FROM generate_series(date_trunc('day', now()), date_trunc('day', now()) + interval '2 days', interval '1 day') d) AS names_ok;
SELECT elfsofa.partition_reach('pt.daily') = date_trunc('day', now()) + interval '3 days' AS reach_ok;
INSERT INTO pt.daily VALUES (1, date_trunc('day', now())), (2, date_trunc('day', now()) + interval '3 days' - interval '1 microsecond');
-- (errors below print only their SQLSTATE: their text names today's date)
\set VERBOSITY sqlstate
INSERT INTO pt.daily VALUES (3, date_trunc('day', now()) - interval '1 microsecond');
INSERT INTO pt.daily VALUES (4, date_trunc('day', now()) + interval '3 days');
-- the parent's CHECK constraints hold in the new partitions too
INSERT INTO pt.daily VALUES (5, now(), 'bad');
\set VERBOSITY default

-- weekly, date column: Monday-aligned, named _pIYYY_wIW
CREATE TABLE pt.weekly (d date NOT NULL) PARTITION BY RANGE (d);
SELECT jsonb_array_length(elfsofa.partition_table('pt.weekly', 'd', '1 week', 1)->'created') AS created;
SELECT pt.parts('pt.weekly') = ARRAY['weekly_p' || to_char(date_trunc('week', now()), 'IYYY_"w"IW'),
                                     'weekly_p' || to_char(date_trunc('week', now()) + interval '1 week', 'IYYY_"w"IW')] AS names_ok;
SELECT elfsofa.partition_reach('pt.weekly') = date_trunc('week', now()) + interval '2 weeks' AS reach_ok;
INSERT INTO pt.weekly VALUES (date_trunc('week', now())::date), ((date_trunc('week', now()) + interval '13 days')::date);
\set VERBOSITY sqlstate
INSERT INTO pt.weekly VALUES ((date_trunc('week', now()) - interval '1 day')::date);
\set VERBOSITY default

-- monthly, quarterly (3 months) and yearly
CREATE TABLE pt.monthly (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
CREATE TABLE pt.quarterly (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
CREATE TABLE pt.yearly (d date NOT NULL) PARTITION BY RANGE (d);
SELECT jsonb_array_length(elfsofa.partition_table('pt.monthly', 'ts', '1 month', 2)->'created') AS monthly,
       jsonb_array_length(elfsofa.partition_table('pt.quarterly', 'ts', '3 months', 1)->'created') AS quarterly,
       jsonb_array_length(elfsofa.partition_table('pt.yearly', 'd', '1 year', 0)->'created') AS yearly;
SELECT pt.parts('pt.monthly') = (SELECT array_agg('monthly_p' || to_char(d, 'YYYY_MM') ORDER BY d)
         FROM generate_series(date_trunc('month', now()), date_trunc('month', now()) + interval '2 months', interval '1 month') d) AS monthly_names,
       elfsofa.partition_reach('pt.monthly') = date_trunc('month', now()) + interval '3 months' AS monthly_reach,
       pt.parts('pt.quarterly') = ARRAY['quarterly_p' || to_char(date_trunc('quarter', now()), 'YYYY_MM'),
                                        'quarterly_p' || to_char(date_trunc('quarter', now()) + interval '3 months', 'YYYY_MM')] AS quarterly_names,
       elfsofa.partition_reach('pt.quarterly') = date_trunc('quarter', now()) + interval '6 months' AS quarterly_reach,
       pt.parts('pt.yearly') = ARRAY['yearly_p' || to_char(now(), 'YYYY')] AS yearly_names,
       elfsofa.partition_reach('pt.yearly') = date_trunc('year', now()) + interval '1 year' AS yearly_reach;

-- maintenance is idempotent: a second run creates and retires nothing
SELECT (r->>'created')::int AS created, (r->>'retired')::int AS retired, (r->>'errors')::int AS errors
  FROM elfsofa.run_maintenance() r;
SELECT (r->>'created')::int AS created, (r->>'retired')::int AS retired, (r->>'errors')::int AS errors
  FROM elfsofa.run_maintenance('pt.daily') r;
-- raising premake makes the missing ones, and only those
UPDATE elfsofa.partition_sets SET premake = 4 WHERE parent = 'pt.daily'::regclass;
SELECT jsonb_array_length(r->'sets'->0->'created') AS created FROM elfsofa.run_maintenance('pt.daily') r;
SELECT elfsofa.partition_reach('pt.daily') = date_trunc('day', now()) + interval '5 days' AS reach_ok;
-- re-registering updates the settings and keeps what exists
SELECT elfsofa.partition_table('pt.daily', 'ts', '1 day', 4, '10 days', 'drop')->'created' AS created;
SELECT premake, retention, retention_action FROM elfsofa.partition_sets WHERE parent = 'pt.daily'::regclass;
-- a partition someone made by hand with other bounds is respected, not duplicated
CREATE TABLE pt.handmade (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
CREATE TABLE pt.handmade_x PARTITION OF pt.handmade
  FOR VALUES FROM (date_trunc('day', now()) + interval '12 hours') TO (date_trunc('day', now()) + interval '36 hours');
SELECT jsonb_array_length(elfsofa.partition_table('pt.handmade', 'ts', '1 day', 3)->'created') AS created;

-- retention, archive: partitions wholly past retention move to elfsofa_archive with every row
CREATE TABLE pt.logs (id int, ts timestamptz NOT NULL, msg text) PARTITION BY RANGE (ts);
CREATE TABLE pt.logs_p2020_01_01 PARTITION OF pt.logs FOR VALUES FROM ('2020-01-01') TO ('2020-01-02');
CREATE TABLE pt.logs_p2020_01_02 PARTITION OF pt.logs FOR VALUES FROM ('2020-01-02') TO ('2020-01-03');
INSERT INTO pt.logs SELECT i, '2020-01-01'::timestamptz + i * interval '1 minute', 'm' || i FROM generate_series(0, 2879) i;
SELECT count(*), sum(id), md5(string_agg(msg, ',' ORDER BY id)) FROM pt.logs;
SELECT jsonb_array_length(elfsofa.partition_table('pt.logs', 'ts', '1 day', 1, '30 days')->'created') AS created;
-- registration alone never retires anything
SELECT count(*) FROM pt.logs;
SELECT r->'sets'->0->'retired' AS retired FROM elfsofa.run_maintenance('pt.logs') r;
SELECT count(*) AS live_old FROM pt.logs WHERE ts < '2021-01-01';
SELECT count(*), sum(id), md5(string_agg(msg, ',' ORDER BY id))
  FROM (SELECT * FROM elfsofa_archive.logs_p2020_01_01 UNION ALL SELECT * FROM elfsofa_archive.logs_p2020_01_02) a;
SELECT relname, relispartition FROM pg_class WHERE relnamespace = 'elfsofa_archive'::regnamespace AND relkind = 'r' ORDER BY 1;

-- retention, drop: an explicit choice; retired partitions are gone
CREATE TABLE pt.events (ts date NOT NULL) PARTITION BY RANGE (ts);
CREATE TABLE pt.events_old PARTITION OF pt.events FOR VALUES FROM ('2020-01-01') TO ('2020-02-01');
CREATE TABLE pt.events_recent PARTITION OF pt.events FOR VALUES FROM ((now() - interval '3 days')::date) TO ((now() + interval '1 day')::date);
INSERT INTO pt.events VALUES ('2020-01-15'), (now()::date);
SELECT jsonb_array_length(elfsofa.partition_table('pt.events', 'ts', '1 day', 1, '7 days', 'drop')->'created') AS created;
SELECT r->'sets'->0->'retired' AS retired FROM elfsofa.run_maintenance('pt.events') r;
SELECT to_regclass('pt.events_old') AS still_there, to_regclass('elfsofa_archive.events_old') AS archived,
       (SELECT count(*) FROM pt.events) AS rows_left;

-- linked sets: lines retire with their orders, lines first (they reference the orders)
CREATE TABLE pt.ord (id int, created_at timestamptz NOT NULL, PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);
CREATE TABLE pt.lin (ord_id int, created_at timestamptz NOT NULL, qty int,
                     FOREIGN KEY (ord_id, created_at) REFERENCES pt.ord (id, created_at)) PARTITION BY RANGE (created_at);
CREATE TABLE pt.ord_p2020_01 PARTITION OF pt.ord FOR VALUES FROM ('2020-01-01') TO ('2020-02-01');
CREATE TABLE pt.lin_p2020_01 PARTITION OF pt.lin FOR VALUES FROM ('2020-01-01') TO ('2020-02-01');
INSERT INTO pt.ord SELECT i, '2020-01-10' FROM generate_series(1, 50) i;
INSERT INTO pt.lin SELECT i, '2020-01-10', i * 2 FROM generate_series(1, 50) i;
SELECT jsonb_array_length(elfsofa.partition_table('pt.ord', 'created_at', '1 month', 1, '1 year')->'created') AS ord_created;
SELECT jsonb_array_length(elfsofa.partition_table('pt.lin', 'created_at', '1 month', 1, retire_with => 'pt.ord')->'created') AS lin_created;
SELECT parent, retention, retention_action, retire_with FROM elfsofa.partition_status
 WHERE parent IN ('pt.ord'::regclass, 'pt.lin'::regclass) ORDER BY parent::text;
SELECT r->'sets' AS sets FROM elfsofa.run_maintenance('pt.lin') r;
SELECT (SELECT count(*) FROM elfsofa_archive.ord_p2020_01) AS archived_orders,
       (SELECT sum(qty) FROM elfsofa_archive.lin_p2020_01) AS archived_qty,
       (SELECT count(*) FROM pg_constraint WHERE conrelid = 'elfsofa_archive.lin_p2020_01'::regclass AND contype = 'f') AS archived_fks;
-- a follower cannot lead, a leader cannot follow, and a link needs the same interval
CREATE TABLE pt.other (created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
SELECT elfsofa.partition_table('pt.other', 'created_at', '1 month', retire_with => 'pt.lin');
:err
SELECT elfsofa.partition_table('pt.ord', 'created_at', '1 month', retire_with => 'pt.monthly');
:err
SELECT elfsofa.partition_table('pt.other', 'created_at', '1 day', retire_with => 'pt.ord');
:err
SELECT elfsofa.partition_table('pt.other', 'created_at', '1 month', retire_with => 'pt.other');
:err

-- one failing set is recorded and the others go on
CREATE TABLE pt.stuck (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
CREATE TABLE pt.stuck_default PARTITION OF pt.stuck DEFAULT;
INSERT INTO pt.stuck VALUES (now() + interval '1 day');
CREATE TABLE pt.fine (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
-- (the message names tomorrow's partition: only the SQLSTATE is printed here)
\set VERBOSITY sqlstate
SELECT elfsofa.partition_table('pt.stuck', 'ts', '1 day', 2);
\set VERBOSITY default
SELECT count(*) AS stuck_registered FROM elfsofa.partition_sets WHERE parent = 'pt.stuck'::regclass;
INSERT INTO elfsofa.partition_sets (parent, control_column, part_interval, premake, time_zone)
VALUES ('pt.stuck', 'ts', '1 day', 2, current_setting('TimeZone')),
       ('pt.fine', 'ts', '1 day', 2, current_setting('TimeZone'));
SELECT s->>'parent' AS parent, jsonb_array_length(s->'created') AS created,
       s->>'error' ~ '^create: rows for partition pt\.stuck_p[0-9_]+ are in the default partition \(SQLSTATE 23514\)$' AS stuck_in_default
  FROM elfsofa.run_maintenance() r, jsonb_array_elements(r->'sets') s
 WHERE s->>'parent' IN ('pt.stuck', 'pt.fine') ORDER BY 1;
SELECT parent, partitions, last_run IS NOT NULL AS ran, last_error IS NOT NULL AS has_error
  FROM elfsofa.partition_status WHERE parent IN ('pt.stuck'::regclass, 'pt.fine'::regclass) ORDER BY parent::text;
-- an archive name already taken is an error for that set only, and nothing is half-done
CREATE TABLE pt.clash (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
CREATE TABLE pt.clash_p2020 PARTITION OF pt.clash FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE TABLE elfsofa_archive.clash_p2020 (ts timestamptz);
SELECT jsonb_array_length(elfsofa.partition_table('pt.clash', 'ts', '1 year', 0, '1 year')->'created') AS created;
SELECT s->>'error' AS error FROM elfsofa.run_maintenance('pt.clash') r, jsonb_array_elements(r->'sets') s;
SELECT count(*) AS still_attached FROM pg_inherits WHERE inhrelid = 'pt.clash_p2020'::regclass;
DELETE FROM elfsofa.partition_sets WHERE parent IN ('pt.stuck'::regclass, 'pt.clash'::regclass);

-- hostile names: quoted identifiers, quotes, semicolons, and a name long enough to be clipped
CREATE SCHEMA "we'ird; DROP SCHEMA pt CASCADE; --";
CREATE TABLE "we'ird; DROP SCHEMA pt CASCADE; --"."Robert'); DROP TABLE pt.daily;-- and a very long tail"
  ("At Time" timestamptz NOT NULL, "x""y" int) PARTITION BY RANGE ("At Time");
SELECT jsonb_array_length(elfsofa.partition_table('"we''ird; DROP SCHEMA pt CASCADE; --"."Robert''); DROP TABLE pt.daily;-- and a very long tail"',
                                                  'At Time', '1 month', 1, '1 day')->'created') AS created;
SELECT length(relname) <= 63 AS clipped, relname LIKE 'Robert''); DROP TABLE pt.daily;%' AND relname ~ '_p[0-9]{4}_[0-9]{2}$' AS named
  FROM pg_class WHERE relnamespace = '"we''ird; DROP SCHEMA pt CASCADE; --"'::regnamespace AND relispartition ORDER BY relname LIMIT 1;
INSERT INTO "we'ird; DROP SCHEMA pt CASCADE; --"."Robert'); DROP TABLE pt.daily;-- and a very long tail" VALUES (now(), 1);
SELECT (r->>'errors')::int AS errors FROM elfsofa.run_maintenance() r;
SELECT to_regclass('pt.daily') IS NOT NULL AS daily_survived;
SELECT elfsofa.partition_table('pt.daily', 'ts''; DROP TABLE pt.daily; --', '1 day');
:err

-- rejections: each writes nothing
SELECT count(*) AS sets_before FROM elfsofa.partition_sets;
CREATE TABLE pt.plain (ts timestamptz NOT NULL);
CREATE TABLE pt.listed (ts timestamptz NOT NULL) PARTITION BY LIST (ts);
CREATE TABLE pt.twocol (ts timestamptz NOT NULL, k int) PARTITION BY RANGE (ts, k);
CREATE TABLE pt.bynum (n bigint NOT NULL, ts timestamptz NOT NULL) PARTITION BY RANGE (n);
CREATE TABLE pt.byexpr (d date NOT NULL) PARTITION BY RANGE ((d + 1));
CREATE TABLE pt.fresh (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT elfsofa.partition_table('pt.fresh', 'ts', '5 hours');
:err
SELECT elfsofa.partition_table('pt.fresh', 'ts', '1 month 2 days');
:err
SELECT elfsofa.partition_table('pt.fresh', 'ts', '0 days');
:err
SELECT elfsofa.partition_table('pt.fresh', 'ts', '-1 day');
:err
SELECT elfsofa.partition_table('pt.fresh', 'ts', NULL);
:err
SELECT elfsofa.partition_table('pt.fresh', NULL, '1 day');
:err
SELECT elfsofa.partition_table(NULL, 'ts', '1 day');
:err
SELECT elfsofa.partition_table('pt.fresh', 'nope', '1 day');
:err
SELECT elfsofa.partition_table('pt.fresh', 'ts', '1 day', -1);
:err
SELECT elfsofa.partition_table('pt.fresh', 'ts', '1 day', 1001);
:err
SELECT elfsofa.partition_table('pt.fresh', 'ts', '1 day', 4, '-3 days');
:err
SELECT elfsofa.partition_table('pt.fresh', 'ts', '1 day', 4, '7 days', 'delete');
:err
SELECT elfsofa.partition_table('pt.fresh', 'ts', '1 day', retire_with => 'pt.plain');
:err
SELECT elfsofa.partition_table('pt.plain', 'ts', '1 day');
:err
SELECT elfsofa.partition_table('pt.listed', 'ts', '1 day');
:err
SELECT elfsofa.partition_table('pt.twocol', 'ts', '1 day');
:err
SELECT elfsofa.partition_table('pt.bynum', 'n', '1 day');
:err
SELECT elfsofa.partition_table('pt.bynum', 'ts', '1 day');
:err
SELECT elfsofa.partition_table('pt.byexpr', 'd', '1 day');
:err
\set VERBOSITY sqlstate
SELECT elfsofa.partition_table('pt.daily_p' || to_char(now(), 'YYYY_MM_DD'), 'ts', '1 day');
\set VERBOSITY default
SELECT elfsofa.partition_table('pt.no_such_table', 'ts', '1 day');
:err
SELECT elfsofa.partition_table(4000000000::oid::regclass, 'ts', '1 day');
:err
SELECT elfsofa.run_maintenance('pt.fresh');
:err
SELECT count(*) AS sets_after FROM elfsofa.partition_sets;
SELECT count(*) AS fresh_partitions FROM pg_inherits WHERE inhparent = 'pt.fresh'::regclass;
-- a non-owner may not register someone else's table
CREATE ROLE pt_stranger;
GRANT USAGE ON SCHEMA elfsofa TO pt_stranger;
SET ROLE pt_stranger;
\set VERBOSITY sqlstate
SELECT elfsofa.partition_table('pt.fresh', 'ts', '1 day');
\set VERBOSITY default
RESET ROLE;
REVOKE USAGE ON SCHEMA elfsofa FROM pt_stranger;
DROP ROLE pt_stranger;

-- a registered table that was dropped is reported, not fatal
DROP TABLE pt.fine;
SELECT (r->>'errors')::int AS errors FROM elfsofa.run_maintenance() r;
SELECT last_error FROM elfsofa.partition_sets WHERE NOT (parent::text LIKE 'pt.%' OR parent::text LIKE 'elfsofa.%' OR parent::text LIKE '"we%');
DELETE FROM elfsofa.partition_sets WHERE last_error IS NOT NULL;

DROP SCHEMA pt CASCADE;
DROP SCHEMA "we'ird; DROP SCHEMA pt CASCADE; --" CASCADE;

-- a dump being restored (row_security = off, as pg_dump/pg_restore run) gets its sets and
-- partitions from the dump: CREATE EXTENSION then registers and creates nothing
SET client_min_messages = warning;
DROP EXTENSION elfsofa CASCADE;
RESET client_min_messages;
SET row_security = off;
CREATE EXTENSION elfsofa;
SHOW session_replication_role;  -- the rest of a restore loads with triggers and foreign keys off
RESET row_security;
RESET session_replication_role;
SELECT (SELECT count(*) FROM elfsofa.partition_sets) AS sets,
       (SELECT count(*) FROM pg_inherits WHERE inhparent = 'elfsofa.orders'::regclass) AS order_partitions;
SET client_min_messages = warning;
DROP EXTENSION elfsofa CASCADE;
RESET client_min_messages;
CREATE EXTENSION elfsofa;
SELECT count(*) AS sets FROM elfsofa.partition_sets;
