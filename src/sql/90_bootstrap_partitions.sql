-- elfsofa install script, part 90: first partitions for the time-partitioned
-- tables, so the shop works right after CREATE EXTENSION.  The partition
-- manager (run_maintenance) keeps them ahead from then on.
DO $bootstrap$
DECLARE
    m   date;
    d   date;
BEGIN
    FOR i IN 0..3 LOOP
        m := (date_trunc('month', now()) + make_interval(months => i))::date;
        EXECUTE format('CREATE TABLE elfsofa.%I PARTITION OF elfsofa.orders FOR VALUES FROM (%L) TO (%L)',
                       'orders_p' || to_char(m, 'YYYY_MM'), m, (m + interval '1 month')::date);
        EXECUTE format('CREATE TABLE elfsofa.%I PARTITION OF elfsofa.order_lines FOR VALUES FROM (%L) TO (%L)',
                       'order_lines_p' || to_char(m, 'YYYY_MM'), m, (m + interval '1 month')::date);
    END LOOP;
    FOR i IN 0..7 LOOP
        d := (date_trunc('day', now()) + make_interval(days => i))::date;
        EXECUTE format('CREATE TABLE elfsofa.%I PARTITION OF elfsofa.system_logs FOR VALUES FROM (%L) TO (%L)',
                       'system_logs_p' || to_char(d, 'YYYY_MM_DD'), d, d + 1);
        EXECUTE format('CREATE TABLE elfsofa.%I PARTITION OF elfsofa.events FOR VALUES FROM (%L) TO (%L)',
                       'events_p' || to_char(d, 'YYYY_MM_DD'), d, d + 1);
    END LOOP;
END
$bootstrap$;
