-- elfsofa install script, part 90: register elfsofa's own time-partitioned
-- tables with the partition manager (src/partitions.c).  Registration makes
-- the current period and the premade ones, so the shop works right after
-- CREATE EXTENSION; run_maintenance (scheduled by schedule_maintenance) keeps
-- them ahead and applies retention from then on.  These partitions are not
-- extension members: pg_dump dumps them with their rows like any table.

-- Orders and their lines: one monthly schedule, no retention by default.
-- order_lines retires with orders (before them: lines reference orders).
SELECT @extschema@.partition_table('@extschema@.orders', 'created_at', '1 month', premake => 3);
SELECT @extschema@.partition_table('@extschema@.order_lines', 'created_at', '1 month', premake => 3,
                                   retire_with => '@extschema@.orders');

-- The outbox: subscribers catch up within days; old events are dropped after 7 days.
SELECT @extschema@.partition_table('@extschema@.events', 'created_at', '1 day', premake => 7,
                                   retention => '7 days', retention_action => 'drop');

-- Application logs: kept 90 days, then archived into elfsofa_archive (still queryable).
SELECT @extschema@.partition_table('@extschema@.system_logs', 'created_at', '1 day', premake => 7,
                                   retention => '90 days', retention_action => 'archive');

-- The audit log (monthly), when the audit area is installed: no retention by default.
-- Its control column is read from the partition key, whatever the audit area named it.
SELECT @extschema@.partition_table(pt.partrelid::regclass, a.attname::text, '1 month', premake => 3)
  FROM pg_catalog.pg_partitioned_table pt
  JOIN pg_catalog.pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
 WHERE pt.partrelid = to_regclass('@extschema@.audit_log') AND pt.partstrat = 'r';
