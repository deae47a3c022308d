-- test/reliability/fingerprint.sql — name|rows|md5 of every elfsofa table
-- (partitioned tables through their parent), to compare two databases.
SELECT format('SELECT %L, count(*), md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) FROM %s t',
              c.oid::regclass::text, E'\n', '', c.oid::regclass)
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('elfsofa', 'elfsofa_archive')
   AND c.relkind IN ('r', 'p') AND NOT c.relispartition
 ORDER BY c.oid::regclass::text
\gexec
