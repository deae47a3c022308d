-- test/reliability/fingerprint.sql — name|rows|md5 of every elfsofa table whose
-- rows pg_dump carries (partitioned tables through their parent), to compare two
-- databases.  Left out: extension tables pg_dump leaves to CREATE EXTENSION
-- (not marked, or marked with a filter: their rows are the install script's).
WITH ext AS (
    SELECT e.oid, u.rel, coalesce(e.extcondition[u.n], '') AS cond
      FROM pg_catalog.pg_extension e, unnest(e.extconfig) WITH ORDINALITY u(rel, n)
     WHERE e.extname = 'elfsofa'
),
member AS (
    SELECT d.objid FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
     WHERE e.extname = 'elfsofa' AND d.deptype = 'e' AND d.classid = 'pg_catalog.pg_class'::regclass
)
SELECT format('SELECT %L, count(*), md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) FROM %s t',
              c.oid::regclass::text, E'\n', '', c.oid::regclass)
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('elfsofa', 'elfsofa_archive')
   AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND (c.relkind = 'p' OR c.oid NOT IN (SELECT objid FROM member)
        OR EXISTS (SELECT FROM ext WHERE ext.rel = c.oid AND ext.cond = ''))
 ORDER BY c.oid::regclass::text
\gexec
