-- Audit trail: enable_audit/disable_audit, what each operation records,
-- actors, rollback, append-only refusals, odd identifiers, keys.
\i test/regress_setup.sql
SET elfsofa.actor = 'regress';

-- rows written since the last mark, without ids, txids or times
\set mark 'SELECT coalesce(max(id), 0) AS m FROM elfsofa.audit_log \\gset'
\set tail 'SELECT operation, actor, actor_role, schema_name, table_name, pk, old_pk, old_data, new_data, changed_columns FROM elfsofa.audit_log WHERE id > :m ORDER BY id;'

-- audited from installation on
SELECT tgrelid::regclass AS audited FROM pg_trigger
 WHERE tgname = 'elfsofa_audit' AND tgparentid = 0 ORDER BY tgrelid::regclass::text;

CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Tab-le" (
    "Id"         integer PRIMARY KEY,
    "Name Col"   text,
    qty          integer NOT NULL DEFAULT 0,
    "Secret Col" text,
    tags         text[],
    extra        jsonb
);

-- enable with an excluded column; the table name needs quoting
SELECT elfsofa.enable_audit('"Odd Schema"."Tab-le"', ARRAY['Secret Col']);
SELECT tgname, tgargs <> '' AS has_args FROM pg_trigger
 WHERE tgrelid = '"Odd Schema"."Tab-le"'::regclass ORDER BY tgname;

-- INSERT keeps the new row (minus excluded columns)
:mark
INSERT INTO "Odd Schema"."Tab-le" VALUES (1, 'first', 2, 'hunter2', '{a,b}', '{"k": [1, 2]}');
INSERT INTO "Odd Schema"."Tab-le" ("Id", "Name Col") VALUES (2, NULL);
:tail
-- UPDATE keeps only the changed columns, old and new, and their names
:mark
UPDATE "Odd Schema"."Tab-le" SET qty = qty + 1, "Name Col" = 'renamed' WHERE "Id" = 1;
UPDATE "Odd Schema"."Tab-le" SET extra = '5' WHERE "Id" = 2;
:tail
-- an UPDATE that changes nothing writes nothing, nor does one that changes only an excluded column
:mark
UPDATE "Odd Schema"."Tab-le" SET qty = qty, "Name Col" = "Name Col";
UPDATE "Odd Schema"."Tab-le" SET "Secret Col" = 'new secret' WHERE "Id" = 1;
SELECT count(*) AS rows_written FROM elfsofa.audit_log WHERE id > :m;
-- the excluded column's value and name never appear in a row's audit (only
-- enable_audit's own ENABLE AUDIT row names it, among exclude_columns)
SELECT count(*) AS leaks FROM elfsofa.audit_log
 WHERE (old_data::text LIKE '%Secret%' OR new_data::text LIKE '%Secret%' OR new_data::text LIKE '%hunter2%'
        OR old_data::text LIKE '%new secret%' OR 'Secret Col' = ANY (changed_columns))
   AND operation <> 'ENABLE AUDIT';
SELECT new_data FROM elfsofa.audit_log WHERE table_name = 'Tab-le' AND operation = 'ENABLE AUDIT' ORDER BY id;
-- a key change records the old key as well
:mark
UPDATE "Odd Schema"."Tab-le" SET "Id" = 20 WHERE "Id" = 2;
:tail
-- DELETE keeps the old row
:mark
DELETE FROM "Odd Schema"."Tab-le" WHERE "Id" = 20;
:tail
-- TRUNCATE is recorded once per statement
:mark
TRUNCATE "Odd Schema"."Tab-le";
:tail

-- row images equal to_jsonb() of the row, type by type
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE alltypes (
    id bigint PRIMARY KEY, s smallint, i integer, n numeric, nn numeric, f4 real, f8 double precision,
    f8nan double precision, b boolean, t text, vc varchar(10), c char(4), d date, ts timestamp,
    tz timestamptz, tm time, iv interval, u uuid, j json, jb jsonb, jbs jsonb, arr integer[],
    rng int4range, m mood, dom posint, ip inet, by bytea, pt point
);
SELECT elfsofa.enable_audit('alltypes');
INSERT INTO alltypes VALUES (1, -3, 7, 12.50, 'NaN', 1.5, 0.1, 'Infinity', true, 'x"y\z', 'vc', 'ab',
    '2026-01-31', '2026-01-31 10:11:12.5', '2026-01-31 10:11:12.5+07', '10:11', '1 day 2 hours',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, {"b": null}]}', '{"z": 1, "a": "x"}', '"scalar"',
    '{1,NULL,3}', '[1,5)', 'happy', 42, '10.0.0.1/8', '\x00ff', '(1,2)');
INSERT INTO alltypes (id) VALUES (2);
-- (the C trigger writes jsonb's binary form itself: the bytes must match too)
SELECT r.id, a.new_data = to_jsonb(r) AS same_as_to_jsonb,
       record_image_eq(ROW(a.new_data), ROW(to_jsonb(r))) AS same_bytes
  FROM elfsofa.audit_log a JOIN alltypes r ON a.pk = jsonb_build_object('id', r.id)
 WHERE a.table_name = 'alltypes' AND a.operation = 'INSERT' ORDER BY r.id;
-- more than 32 keys (jsonb stores an offset in every 32nd entry), old and new images
SELECT format('CREATE TABLE wide (id integer PRIMARY KEY, %s)',
              string_agg(format('c%s integer', g), ', ')) FROM generate_series(1, 70) g \gexec
SELECT elfsofa.enable_audit('wide');
INSERT INTO wide (id, c1, c33, c64, c70) VALUES (1, 1, 33, NULL, 70);
SELECT record_image_eq(ROW(a.new_data), ROW(to_jsonb(w))) AS insert_same_bytes
  FROM elfsofa.audit_log a, wide w WHERE a.table_name = 'wide' AND a.operation = 'INSERT';
:mark
SELECT format('UPDATE wide SET %s', string_agg(format('c%s = %s', g, g * 10), ', '))
  FROM generate_series(2, 40) g \gexec
SELECT cardinality(changed_columns) AS changed,
       record_image_eq(ROW(a.new_data),
                       ROW((SELECT jsonb_object_agg(k, to_jsonb(w) -> k) FROM unnest(a.changed_columns) k))) AS new_same_bytes,
       record_image_eq(ROW(a.old_data),
                       ROW((SELECT jsonb_object_agg(k, CASE k WHEN 'c33' THEN '33' ELSE 'null' END::jsonb)
                             FROM unnest(a.changed_columns) k))) AS old_same_bytes
  FROM elfsofa.audit_log a, wide w WHERE a.id > :m;
SELECT new_data ->> 'nn' AS nan, new_data -> 'f8nan' AS inf, new_data -> 'jbs' AS scalar_jsonb, new_data -> 'tz' AS tz
  FROM elfsofa.audit_log WHERE table_name = 'alltypes' AND pk = '{"id": 1}';
-- UPDATE diffs compare values, not just pointers: long (toasted) values unchanged are not reported
UPDATE alltypes SET t = repeat('long text ', 5000) WHERE id = 2;
:mark
UPDATE alltypes SET t = t, i = 8 WHERE id = 2;
SELECT operation, old_data, new_data, changed_columns FROM elfsofa.audit_log WHERE id > :m;

-- actor: JWT claims (sub and role), else elfsofa.actor, else current_user
:mark
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "8d2c0a4e-1111-4000-8000-000000000001", "role": "authenticated"}', true) IS NOT NULL AS set;
INSERT INTO "Odd Schema"."Tab-le" ("Id") VALUES (100);
-- claims changing inside the transaction are picked up
SELECT set_config('request.jwt.claims', '{"sub": "8d2c0a4e-2222-4000-8000-000000000002", "role": "service_role"}', true) IS NOT NULL AS set;
INSERT INTO "Odd Schema"."Tab-le" ("Id") VALUES (101);
-- claims without sub: the role is kept, the actor falls back
SELECT set_config('request.jwt.claims', '{"role": "anon"}', true) IS NOT NULL AS set;
INSERT INTO "Odd Schema"."Tab-le" ("Id") VALUES (102);
COMMIT;
SET elfsofa.actor = 'cron:nightly';
INSERT INTO "Odd Schema"."Tab-le" ("Id") VALUES (103);
BEGIN;
SET LOCAL elfsofa.actor = 'psql:somchai';
INSERT INTO "Odd Schema"."Tab-le" ("Id") VALUES (104);
COMMIT;
RESET elfsofa.actor;
INSERT INTO "Odd Schema"."Tab-le" ("Id") VALUES (105);
SELECT pk, actor, actor_role, db_user = current_user AS db_user_ok FROM elfsofa.audit_log WHERE id > :m ORDER BY id;
-- one transaction id per transaction, application_name recorded
SELECT count(DISTINCT txid) AS transactions, bool_and(application_name = 'pg_regress/audit') AS app_ok
  FROM elfsofa.audit_log WHERE id > :m;
-- current_user is the effective user at the time of the change
-- (left by an earlier run of this file: its grants, then the role)
DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'audit_clerk') THEN
  DROP OWNED BY audit_clerk; DROP ROLE audit_clerk; END IF; END $$;
CREATE ROLE audit_clerk;
GRANT USAGE ON SCHEMA "Odd Schema" TO audit_clerk;
GRANT INSERT ON "Odd Schema"."Tab-le" TO audit_clerk;
:mark
SET ROLE audit_clerk;
INSERT INTO "Odd Schema"."Tab-le" ("Id") VALUES (106);
RESET ROLE;
SELECT pk, actor, db_user FROM elfsofa.audit_log WHERE id > :m;
SET elfsofa.actor = 'regress';

-- rolled-back work leaves no audit row, also inside a savepoint
:mark
BEGIN;
INSERT INTO "Odd Schema"."Tab-le" ("Id") VALUES (200);
ROLLBACK;
BEGIN;
INSERT INTO "Odd Schema"."Tab-le" ("Id") VALUES (201);
SAVEPOINT s;
INSERT INTO "Odd Schema"."Tab-le" ("Id") VALUES (202);
UPDATE "Odd Schema"."Tab-le" SET qty = 9 WHERE "Id" = 201;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT operation, pk FROM elfsofa.audit_log WHERE id > :m ORDER BY id;
-- a failing statement leaves nothing either
:mark
INSERT INTO "Odd Schema"."Tab-le" ("Id") VALUES (203), (201);
:err
SELECT count(*) AS rows_written FROM elfsofa.audit_log WHERE id > :m;

-- enable_audit rejections
SELECT elfsofa.enable_audit(NULL);
:err
SELECT elfsofa.enable_audit('"Odd Schema"."Tab-le"', ARRAY['qty', 'no such column']);
:err
SELECT elfsofa.enable_audit('"Odd Schema"."Tab-le"', ARRAY[NULL]);
:err
SELECT elfsofa.enable_audit('"Odd Schema"."Tab-le"', ARRAY['Id']);
:err
CREATE VIEW tab_view AS SELECT * FROM "Odd Schema"."Tab-le";
SELECT elfsofa.enable_audit('tab_view');
:err
SELECT elfsofa.enable_audit('elfsofa.audit_log');
:err
-- a table without a primary key is refused (with a hint) ...
CREATE TABLE nokey (a integer NOT NULL, b text);
SELECT elfsofa.enable_audit('nokey');
:err
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'nokey'::regclass;
-- ... unless it has a replica identity index, which then serves as the key
CREATE UNIQUE INDEX nokey_a ON nokey (a);
ALTER TABLE nokey REPLICA IDENTITY USING INDEX nokey_a;
SELECT elfsofa.enable_audit('nokey');
:mark
INSERT INTO nokey VALUES (1, 'x');
:tail
-- the rejected calls did not change the settings: Secret Col is still excluded, qty still audited
:mark
UPDATE "Odd Schema"."Tab-le" SET qty = 5, "Secret Col" = 's' WHERE "Id" = 103;
SELECT changed_columns FROM elfsofa.audit_log WHERE id > :m;
-- enable_audit again replaces the excluded columns
SELECT elfsofa.enable_audit('"Odd Schema"."Tab-le"', '{qty,qty}');
:mark
UPDATE "Odd Schema"."Tab-le" SET qty = 6, "Secret Col" = 't' WHERE "Id" = 103;
SELECT changed_columns, old_data, new_data FROM elfsofa.audit_log WHERE id > :m;

-- an excluded column stays excluded when renamed; dropping it is fine too
ALTER TABLE "Odd Schema"."Tab-le" RENAME COLUMN qty TO quantity;
:mark
UPDATE "Odd Schema"."Tab-le" SET quantity = 7 WHERE "Id" = 103;
UPDATE "Odd Schema"."Tab-le" SET quantity = 8, "Secret Col" = 'u' WHERE "Id" = 103;
SELECT changed_columns, old_data, new_data FROM elfsofa.audit_log WHERE id > :m;
DROP VIEW tab_view;
ALTER TABLE "Odd Schema"."Tab-le" DROP COLUMN quantity;
:mark
INSERT INTO "Odd Schema"."Tab-le" ("Id", "Secret Col") VALUES (107, 'v');
SELECT new_data FROM elfsofa.audit_log WHERE id > :m;

-- renames and new columns are picked up (relcache and schema invalidation)
:mark
ALTER TABLE "Odd Schema"."Tab-le" RENAME TO "Tab-le 2";
ALTER TABLE "Odd Schema"."Tab-le 2" ADD COLUMN added text DEFAULT 'new';
INSERT INTO "Odd Schema"."Tab-le 2" ("Id") VALUES (300);
ALTER SCHEMA "Odd Schema" RENAME TO "Odder Schema";
DELETE FROM "Odder Schema"."Tab-le 2" WHERE "Id" = 300;
SELECT operation, schema_name, table_name, new_data ->> 'added' AS added, old_data ->> 'added' AS old_added
  FROM elfsofa.audit_log WHERE id > :m ORDER BY id;

-- disable_audit: true when it was on, false when not; nothing recorded afterwards
SELECT elfsofa.disable_audit('"Odder Schema"."Tab-le 2"');
SELECT elfsofa.disable_audit('"Odder Schema"."Tab-le 2"');
SELECT elfsofa.disable_audit(NULL);
:err
:mark
INSERT INTO "Odder Schema"."Tab-le 2" ("Id") VALUES (400);
TRUNCATE "Odder Schema"."Tab-le 2";
SELECT count(*) AS rows_written FROM elfsofa.audit_log WHERE id > :m;

-- partitioned tables: recorded under the parent's name, also for partitions
-- created later and for statements aimed at a partition directly (orders'
-- INSERTs carry the key only, so no status: see sql/audit_lean.sql)
INSERT INTO elfsofa.customers (email) VALUES ('part@example.com') RETURNING id AS cust \gset
:mark
INSERT INTO elfsofa.orders (order_number, customer_id, total) VALUES ('ELF-2026-000001', :'cust', 10);
CREATE TABLE elfsofa.orders_p2099_01 PARTITION OF elfsofa.orders FOR VALUES FROM ('2099-01-01') TO ('2099-02-01');
INSERT INTO elfsofa.orders (order_number, customer_id, total, created_at)
VALUES ('ELF-2099-000002', :'cust', 20, '2099-01-05 10:00+07');
UPDATE elfsofa.orders_p2099_01 SET status = 'confirmed';
SELECT operation, schema_name, table_name, pk ->> 'id' AS order_id, pk ? 'created_at' AS key_has_created_at,
       new_data ->> 'status' AS status, changed_columns
  FROM elfsofa.audit_log WHERE id > :m ORDER BY id;
SELECT elfsofa.enable_audit('elfsofa.orders_p2099_01');
:err
SELECT elfsofa.disable_audit('elfsofa.orders_p2099_01');
:err

-- a partitioned table of our own: exclusions follow a rename on partitions too,
-- a partition attached later is covered, TRUNCATE of the parent is recorded
CREATE TABLE parted (id integer, region text, secret text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE parted_north PARTITION OF parted FOR VALUES IN ('north');
SELECT elfsofa.enable_audit('parted', '{secret}');
CREATE TABLE parted_south (LIKE parted);
ALTER TABLE parted ATTACH PARTITION parted_south FOR VALUES IN ('south');
ALTER TABLE parted RENAME COLUMN secret TO hidden;
:mark
INSERT INTO parted VALUES (1, 'north', 'n-secret'), (2, 'south', 's-secret');
UPDATE parted_south SET hidden = 'changed';
TRUNCATE parted;
SELECT operation, table_name, pk, new_data FROM elfsofa.audit_log WHERE id > :m ORDER BY id;
-- TRUNCATE aimed at one partition fires no trigger of the parent: recorded
-- anyway, under the parent's name, naming the partition; nothing when rolled back
INSERT INTO parted VALUES (3, 'north', 'n3');
:mark
BEGIN;
TRUNCATE parted_north;
ROLLBACK;
TRUNCATE parted_north;
SELECT operation, table_name, pk, new_data FROM elfsofa.audit_log WHERE id > :m ORDER BY id;
SELECT count(*) AS north_rows FROM parted_north;

-- audit_history: a row's story, oldest first, across a key change
CREATE TABLE story (id integer PRIMARY KEY, v text);
SELECT elfsofa.enable_audit('story');
INSERT INTO story VALUES (1, 'a');
UPDATE story SET v = 'b' WHERE id = 1;
UPDATE story SET id = 2 WHERE id = 1;
INSERT INTO story VALUES (1, 'again');
DELETE FROM story WHERE id = 2;
SELECT operation, pk, old_pk, old_data, new_data FROM elfsofa.audit_history('story', '{"id": 1}');
SELECT operation, pk, old_pk FROM elfsofa.audit_history('story', '{"id": 2}');
-- a TRUNCATE is part of every row's story
TRUNCATE story;
SELECT operation, pk FROM elfsofa.audit_history('story', '{"id": 2}');
SELECT operation FROM elfsofa.audit_history('story', '{"id": 3}');
SELECT count(*) FROM elfsofa.audit_history(NULL, '{"id": 1}');
-- audit_summary: changes per table, operation and actor in a period
SELECT schema_name, table_name, operation, actor, actor_role, changes
  FROM elfsofa.audit_summary(now() - interval '1 hour', now() + interval '1 hour')
 WHERE table_name IN ('story', 'Tab-le', 'Tab-le 2');
SELECT count(*) FROM elfsofa.audit_summary(now() + interval '1 hour', now() + interval '2 hours');

-- append-only: UPDATE, DELETE, TRUNCATE refused, on the log and on its partitions
SELECT count(*) AS before FROM elfsofa.audit_log \gset
UPDATE elfsofa.audit_log SET actor = 'mallory';
:err
DELETE FROM elfsofa.audit_log;
:err
DELETE FROM elfsofa.audit_log WHERE false;
:err
TRUNCATE elfsofa.audit_log;
:err
-- (the partition's name depends on today: terse errors here, and the DETAIL
-- checked below with the name masked)
SELECT format('elfsofa.%I', 'audit_log_p' || to_char(now(), 'YYYY_MM')) AS part \gset
\set VERBOSITY terse
UPDATE :part SET actor = 'mallory';
:err
DELETE FROM :part;
:err
TRUNCATE :part;
:err
\set VERBOSITY default
SELECT set_config('regress.part', :'part', false) IS NOT NULL AS part_set;
DO $$
DECLARE
    stmt text;
    d text;
    h text;
BEGIN
    FOREACH stmt IN ARRAY ARRAY['UPDATE %s SET actor = ''mallory''', 'DELETE FROM %s', 'TRUNCATE %s'] LOOP
        BEGIN
            EXECUTE format(stmt, current_setting('regress.part'));
            RAISE NOTICE 'not refused: %', stmt;
        EXCEPTION WHEN insufficient_privilege THEN
            GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
            RAISE NOTICE '% / %', replace(d, current_setting('regress.part'), '<this month''s partition>'), h;
        END;
    END LOOP;
END $$;
SELECT count(*) = :before AS nothing_changed, count(*) FILTER (WHERE actor = 'mallory') AS forged
  FROM elfsofa.audit_log;
-- ... but retention may detach and drop whole partitions: DDL, not DML
CREATE TABLE elfsofa.audit_log_p2099_01 PARTITION OF elfsofa.audit_log
    FOR VALUES FROM ('2099-01-01') TO ('2099-02-01');
INSERT INTO elfsofa.audit_log (logged_at, txid, actor, db_user, schema_name, table_name, operation)
VALUES ('2099-01-02', 1, 'x', 'x', 'public', 'old', 'INSERT');
ALTER TABLE elfsofa.audit_log DETACH PARTITION elfsofa.audit_log_p2099_01;
DROP TABLE elfsofa.audit_log_p2099_01;
SELECT count(*) = :before AS rest_untouched FROM elfsofa.audit_log;
SELECT format('elfsofa.%I', 'audit_log_p' || to_char(now() + interval '3 months', 'YYYY_MM')) AS last_part \gset
BEGIN;
ALTER TABLE elfsofa.audit_log DETACH PARTITION :last_part;
DROP TABLE :last_part;
ROLLBACK;
BEGIN;
DROP TABLE :last_part;
ROLLBACK;
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = 'elfsofa.audit_log'::regclass;
-- audited writes in the same transaction as a detach of another partition
:mark
BEGIN;
INSERT INTO story VALUES (10, 'x');
ALTER TABLE elfsofa.audit_log DETACH PARTITION :last_part;
INSERT INTO story VALUES (11, 'y');
COMMIT;
SELECT operation, pk FROM elfsofa.audit_log WHERE id > :m ORDER BY id;
ALTER TABLE elfsofa.audit_log ATTACH PARTITION :last_part
    FOR VALUES FROM (date_trunc('month', now() + interval '3 months')) TO (date_trunc('month', now() + interval '4 months'));
-- no partition for the transaction time: the write fails (SQLSTATE 23514, hint: run maintenance), nothing is half-done
BEGIN;
SELECT format('elfsofa.%I', 'audit_log_p' || to_char(now(), 'YYYY_MM')) AS cur_part \gset
ALTER TABLE elfsofa.audit_log DETACH PARTITION :cur_part;
\set VERBOSITY terse
INSERT INTO story VALUES (12, 'z');
:err
\set VERBOSITY default
ROLLBACK;
SELECT count(*) AS story_rows FROM story WHERE id = 12;

-- an error caught inside the transaction (subtransaction rollback) after the
-- audit partition was opened: the caught part leaves no row, the rest commits
-- cleanly (no resource warnings)
:mark
DO $$
BEGIN
    BEGIN
        INSERT INTO story VALUES (20, 'a');
        INSERT INTO story VALUES (20, 'duplicate');
    EXCEPTION WHEN unique_violation THEN NULL;
    END;
    INSERT INTO story VALUES (21, 'b');
END
$$;
SELECT operation, pk FROM elfsofa.audit_log WHERE id > :m ORDER BY id;
-- two-phase commit
:mark
BEGIN;
INSERT INTO story VALUES (22, 'c');
PREPARE TRANSACTION 'audit_2pc';
SELECT count(*) AS before_commit FROM elfsofa.audit_log WHERE id > :m;
COMMIT PREPARED 'audit_2pc';
SELECT operation, pk FROM elfsofa.audit_log WHERE id > :m ORDER BY id;

-- Hash index entries of audit rows are written in batches (bucket order)
-- before any later query: an index scan finds every row at once, within the
-- writing transaction, inside the same statement and after a savepoint
-- rollback, and never twice.
CREATE TABLE batch (id integer PRIMARY KEY, v text);
SELECT elfsofa.enable_audit('batch');
CREATE TABLE batch_seen (id integer, seen bigint);
CREATE FUNCTION batch_reader() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- fires after elfsofa_audit (trigger names sort), in the same statement
    SET LOCAL enable_seqscan = off;
    INSERT INTO batch_seen
    SELECT NEW.id, count(*) FROM elfsofa.audit_history('batch', jsonb_build_object('id', NEW.id));
    RETURN NULL;
END
$$;
CREATE TRIGGER zz_reader AFTER INSERT ON batch FOR EACH ROW EXECUTE FUNCTION batch_reader();
\set both 'SELECT (SELECT count(*) FROM elfsofa.audit_log WHERE table_name = \'batch\' AND pk = ANY (SELECT jsonb_build_object(\'id\', g) FROM generate_series(1, 3000) g)) AS via_index, (SELECT count(*) FROM elfsofa.audit_log WHERE table_name = \'batch\' AND pk::text LIKE \'{"id": %\') AS via_seqscan;'
BEGIN;
SET LOCAL enable_seqscan = off;
INSERT INTO batch SELECT g, 'v' FROM generate_series(1, 1000) g;
SELECT min(seen), max(seen), count(*) FROM batch_seen;
SELECT operation, pk FROM elfsofa.audit_history('batch', '{"id": 777}');
SAVEPOINT s;
INSERT INTO batch SELECT g, 'v' FROM generate_series(1001, 2000) g;
UPDATE batch SET v = 'w' WHERE id <= 500;
ROLLBACK TO SAVEPOINT s;
UPDATE batch SET id = id + 2000 WHERE id > 990;
SELECT operation, pk, old_pk FROM elfsofa.audit_history('batch', '{"id": 2995}');
SELECT operation, pk, old_pk FROM elfsofa.audit_history('batch', '{"id": 995}');
SELECT count(*) AS rolled_back_found FROM elfsofa.audit_history('batch', '{"id": 1500}');
:both
COMMIT;
:both
-- a caught error inside a function: the caught part is gone, the rest indexed
DO $$
BEGIN
    BEGIN
        INSERT INTO batch SELECT g, 'x' FROM generate_series(3001, 3100) g;
        INSERT INTO batch VALUES (3001, 'duplicate');
    EXCEPTION WHEN unique_violation THEN NULL;
    END;
    INSERT INTO batch SELECT g, 'y' FROM generate_series(3101, 3150) g;
END
$$;
SET enable_seqscan = off;
SELECT count(*) AS caught_part FROM elfsofa.audit_history('batch', '{"id": 3050}');
SELECT count(*) AS kept_part FROM elfsofa.audit_history('batch', '{"id": 3120}');
RESET enable_seqscan;
