-- test/bench/analytics_run.sql — times each report a few times (median of
-- :runs), plus a no-pruning baseline of the month report, and prints a table.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET jit = off;   -- the baseline query is timed without JIT too, like the reports (70_ops.sql)
CREATE TEMP TABLE timing (what text, run int, ms float8);

CREATE FUNCTION pg_temp.time_it(what text, runs int, q text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; n bigint;
BEGIN
    FOR i IN 1..runs LOOP
        t0 := clock_timestamp();
        EXECUTE q INTO n;
        INSERT INTO timing VALUES (what, i, extract(epoch FROM clock_timestamp() - t0) * 1000);
    END LOOP;
END $$;

\o /dev/null
SELECT pg_temp.time_it('sales_summary month, by day', :runs,
  $q$SELECT count(*) FROM elfsofa.sales_summary(date_trunc('month', now()) - interval '1 month', date_trunc('month', now()), 'day')$q$);
SELECT pg_temp.time_it('same month, no pruning (baseline)', :runs,
  $q$SELECT count(*) FROM (SELECT (created_at AT TIME ZONE 'Asia/Bangkok')::date, count(*), sum(total) FROM elfsofa.orders
      WHERE (created_at AT TIME ZONE 'Asia/Bangkok')::date >= (date_trunc('month', now()) - interval '1 month')::date
        AND (created_at AT TIME ZONE 'Asia/Bangkok')::date < date_trunc('month', now())::date AND status <> 'cancelled' GROUP BY 1) x$q$);
SELECT pg_temp.time_it('sales_summary year, by month', :runs,
  $q$SELECT count(*) FROM elfsofa.sales_summary(now() - interval '1 year', now(), 'month')$q$);
SELECT pg_temp.time_it('sales_summary year, by day', :runs,
  $q$SELECT count(*) FROM elfsofa.sales_summary(now() - interval '1 year', now(), 'day')$q$);
SELECT pg_temp.time_it('recommend(B-0001) over 1M+ lines', :runs,
  $q$SELECT count(*) FROM elfsofa.recommend('B-0001', 5)$q$);
SELECT pg_temp.time_it('recommend(B-0150)', :runs,
  $q$SELECT count(*) FROM elfsofa.recommend('B-0150', 10)$q$);
SELECT pg_temp.time_it('restock_suggestions(14)', :runs,
  $q$SELECT count(*) FROM elfsofa.restock_suggestions(14)$q$);
SELECT pg_temp.time_it('customer_insights (50 orders)', :runs,
  $q$SELECT count(*) FROM elfsofa.customer_insights('c0000000-0000-4000-8000-000000000001')$q$);
SELECT pg_temp.time_it('health()', :runs, $q$SELECT count(*) FROM elfsofa.health()$q$);

\o
SELECT what AS report, count(*) AS runs,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS median_ms,
       round(min(ms)::numeric, 1) AS min_ms
  FROM timing GROUP BY what ORDER BY min(run), what;

WITH m AS (SELECT what, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms FROM timing GROUP BY what)
SELECT round(((SELECT ms FROM m WHERE what LIKE 'same month%') / (SELECT ms FROM m WHERE what = 'sales_summary month, by day'))::numeric, 1)
         AS "no-pruning baseline / month report",
       round(((SELECT ms FROM m WHERE what = 'sales_summary year, by month') / (SELECT ms FROM m WHERE what = 'sales_summary month, by day'))::numeric, 1)
         AS "year report / month report";
