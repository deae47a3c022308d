-- archive_rows / archive_rows_batched: old rows of unpartitioned tables move
-- into elfsofa_archive.<same name>, each exactly once, in atomic batches.
\i test/regress_setup.sql

CREATE SCHEMA ar;
CREATE TABLE ar.logs (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,
    msg     text NOT NULL,
    doubled bigint GENERATED ALWAYS AS (id * 2) STORED
);
INSERT INTO ar.logs (at, msg)
SELECT now() - i * interval '1 hour', 'm' || i FROM generate_series(1, 1000) i;
SELECT count(*), sum(id), md5(string_agg(msg, ',' ORDER BY id)) FROM ar.logs;

-- rows older than 10 days (240 hours) leave, in batches of 37
SELECT elfsofa.archive_rows('ar.logs', 'at', '10 days', 37);
SELECT count(*) AS left_live, min(at) > now() - interval '10 days' AS all_recent FROM ar.logs;
SELECT count(*) AS archived, max(at) <= now() - interval '10 days' AS all_old FROM elfsofa_archive.logs;
-- every row exactly once, identical content (generated column kept as a value)
SELECT count(*), count(DISTINCT id), sum(id), md5(string_agg(msg, ',' ORDER BY id)), bool_and(doubled = id * 2)
  FROM (SELECT id, msg, doubled FROM ar.logs UNION ALL SELECT id, msg, doubled FROM elfsofa_archive.logs) x;
-- the archive table was made LIKE the source
SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
 WHERE attrelid = 'elfsofa_archive.logs'::regclass AND attnum > 0 ORDER BY attnum;
-- nothing more to do: 0, and the next cut appends to the same archive table
SELECT elfsofa.archive_rows('ar.logs', 'at', '10 days');
SELECT elfsofa.archive_rows('ar.logs', 'at', '5 days');
SELECT (SELECT count(*) FROM ar.logs) AS live, (SELECT count(*) FROM elfsofa_archive.logs) AS archived;
-- older_than 0 takes everything up to now
SELECT elfsofa.archive_rows('ar.logs', 'at', '0 seconds', 1000000);
SELECT (SELECT count(*) FROM ar.logs) AS live, (SELECT count(*) FROM elfsofa_archive.logs) AS archived,
       (SELECT count(DISTINCT id) FROM elfsofa_archive.logs) AS distinct_ids;

-- the procedure commits per batch and reports through its INOUT argument
CREATE TABLE ar.visits (day date NOT NULL, n int);
INSERT INTO ar.visits SELECT (now() - i * interval '1 day')::date, i FROM generate_series(1, 100) i;
CALL elfsofa.archive_rows_batched('ar.visits', 'day', '30 days', 10);
SELECT (SELECT count(*) FROM ar.visits) AS live, (SELECT sum(n) FROM elfsofa_archive.visits) AS archived_sum,
       (SELECT sum(n) FROM ar.visits) + (SELECT sum(n) FROM elfsofa_archive.visits) AS total_sum;
-- inside a transaction block it cannot commit, so it does the same work in that transaction
BEGIN;
CALL elfsofa.archive_rows_batched('ar.visits', 'day', '20 days', 3);
ROLLBACK;
SELECT count(*) AS live_after_rollback FROM ar.visits;

-- timestamp without time zone works too
CREATE TABLE ar.plainstamp (t timestamp NOT NULL);
INSERT INTO ar.plainstamp SELECT localtimestamp - i * interval '1 day' FROM generate_series(1, 10) i;
SELECT elfsofa.archive_rows('ar.plainstamp', 't', '5 days', 2);

-- hostile names: quotes, semicolons and spaces in schema, table and column
CREATE SCHEMA "ar; DROP SCHEMA ar CASCADE; --";
CREATE TABLE "ar; DROP SCHEMA ar CASCADE; --"."Bobby'); DROP TABLE ar.logs;--" ("when""ever" timestamptz NOT NULL, v int);
INSERT INTO "ar; DROP SCHEMA ar CASCADE; --"."Bobby'); DROP TABLE ar.logs;--" SELECT now() - i * interval '1 day', i FROM generate_series(1, 20) i;
SELECT elfsofa.archive_rows('"ar; DROP SCHEMA ar CASCADE; --"."Bobby''); DROP TABLE ar.logs;--"', 'when"ever', '10 days', 4);
SELECT count(*), sum(v) FROM elfsofa_archive."Bobby'); DROP TABLE ar.logs;--";
SELECT to_regclass('ar.logs') IS NOT NULL AS logs_survived;

-- rejections: each moves nothing
CREATE TABLE ar.parted (at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE VIEW ar.v AS SELECT * FROM ar.visits;
CREATE TABLE ar.notime (at text);
INSERT INTO ar.notime VALUES ('2020-01-01');
SELECT elfsofa.archive_rows('ar.parted', 'at', '1 day');
:err
SELECT elfsofa.archive_rows('ar.v', 'day', '1 day');
:err
SELECT elfsofa.archive_rows('ar.visits', 'nope', '1 day');
:err
SELECT elfsofa.archive_rows('ar.notime', 'at', '1 day');
:err
SELECT elfsofa.archive_rows('ar.visits', 'day', '-1 day');
:err
SELECT elfsofa.archive_rows('ar.visits', 'day', NULL);
:err
SELECT elfsofa.archive_rows('ar.visits', NULL, '1 day');
:err
SELECT elfsofa.archive_rows(NULL, 'day', '1 day');
:err
SELECT elfsofa.archive_rows('ar.visits', 'day', '1 day', 0);
:err
SELECT elfsofa.archive_rows('ar.visits', 'day', '1 day', 1000001);
:err
SELECT elfsofa.archive_rows('elfsofa_archive.visits', 'day', '1 day');
:err
SELECT elfsofa.archive_rows(4000000000::oid::regclass, 'day', '1 day');
:err
SELECT elfsofa.archive_rows('ar.no_such', 'day', '1 day');
:err
SELECT (SELECT count(*) FROM ar.visits) AS live, (SELECT count(*) FROM ar.notime) AS notime,
       to_regclass('elfsofa_archive.notime') AS no_archive_made;
-- a table whose archive twin no longer matches fails whole, moving nothing
CREATE TABLE ar.drift (at timestamptz NOT NULL, a int);
CREATE TABLE elfsofa_archive.drift (at timestamptz NOT NULL);
INSERT INTO ar.drift VALUES (now() - interval '2 days', 1);
SELECT elfsofa.archive_rows('ar.drift', 'at', '1 day');
:err
SELECT count(*) AS drift_live FROM ar.drift;

DROP SCHEMA ar CASCADE;
DROP SCHEMA "ar; DROP SCHEMA ar CASCADE; --" CASCADE;
