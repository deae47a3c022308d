-- elfsofa install script, part 90: register elfsofa's own time-partitioned
-- tables with the partition manager (src/partitions/).  Registration makes
-- the current period and the premade ones, so the shop works right after
-- CREATE EXTENSION; run_maintenance (scheduled by schedule_maintenance) keeps
-- them ahead and applies retention from then on.
--
-- pg_dump: these partitions are not extension members, so a dump carries
-- them (definition and rows) like any table, and partition_sets' rows too.
-- A dump being restored (pg_dump scripts and pg_restore always run with
-- row_security = off, which sessions otherwise leave on; CREATE EXTENSION
-- itself turns check_function_bodies off, so that is no sign) therefore
-- brings every set and partition back
-- itself: registering here as well would collide with it ("relation already
-- exists", duplicate keys in partition_sets), so then nothing is made here,
-- and the session is set up for loading the dump's rows (below).
DO $bootstrap$
BEGIN
    IF NOT current_setting('row_security')::boolean THEN
        -- The rest of the restore session loads rows that are already
        -- consistent, in pg_dump's order (order_lines' partitions before
        -- orders'), with the audit and event rows they made: replica mode
        -- keeps foreign-key checks and elfsofa's triggers from firing on
        -- them (and elfsofa.audit_replica_writes off the audit triggers,
        -- which fire in replica mode too).  The library is loaded so that its ProcessUtility hook skips
        -- the dump's indexes of partitions that ATTACH already made
        -- (src/partitions/part_restore.c).
        BEGIN
            PERFORM pg_catalog.set_config('session_replication_role', 'replica', false);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'elfsofa: a dump of elfsofa must be restored by a superuser'
                USING DETAIL = 'row_security is off, as pg_dump sets it, and this role may not set session_replication_role.',
                      HINT = 'Restore as a superuser (the role that can CREATE EXTENSION elfsofa); nothing was loaded.';
        END;
        EXECUTE 'LOAD ''MODULE_PATHNAME''';
        -- the audit triggers fire ALWAYS; the dump's rows bring their audit rows with them
        PERFORM pg_catalog.set_config('elfsofa.audit_replica_writes', 'off', false);
        RAISE NOTICE 'elfsofa: a dump is being restored: partition sets and partitions come from the dump';
        RETURN;
    END IF;

    -- Orders and their lines: one monthly schedule, no retention by default.
    -- order_lines retires with orders (before them: lines reference orders).
    PERFORM @extschema@.partition_table('@extschema@.orders', 'created_at', '1 month', premake => 3);
    PERFORM @extschema@.partition_table('@extschema@.order_lines', 'created_at', '1 month', premake => 3,
                                        retire_with => '@extschema@.orders');

    -- The outbox: subscribers catch up within days; old events are dropped after 7 days.
    PERFORM @extschema@.partition_table('@extschema@.events', 'created_at', '1 day', premake => 7,
                                        retention => '7 days', retention_action => 'drop');

    -- Application logs: kept 90 days, then archived into elfsofa_archive (still queryable).
    PERFORM @extschema@.partition_table('@extschema@.system_logs', 'created_at', '1 day', premake => 7,
                                        retention => '90 days', retention_action => 'archive');

    -- The audit log (monthly, no retention by default) when the audit area is installed;
    -- its control column is read from the partition key, whatever the audit area named it.
    PERFORM @extschema@.partition_table(pt.partrelid::regclass, a.attname::text, '1 month', premake => 3)
       FROM pg_catalog.pg_partitioned_table pt
       JOIN pg_catalog.pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
      WHERE pt.partrelid = to_regclass('@extschema@.audit_log') AND pt.partstrat = 'r';
END
$bootstrap$;

-- Every change of a set's settings (premake, retention, retention_action,
-- registration) is itself audited; maintenance's bookkeeping is not.  Outside
-- the block above: a restored database audits its sets as well.
SELECT @extschema@.enable_audit('@extschema@.partition_sets', ARRAY['last_run', 'last_error']);
