-- elfsofa install script, part 50: the partition manager, archiving and the
-- pg_cron schedule (src/partitions/).

CREATE TABLE @extschema@.partition_sets (
    parent           regclass PRIMARY KEY,
    control_column   text NOT NULL,
    part_interval    interval NOT NULL,
    premake          integer NOT NULL DEFAULT 4 CHECK (premake BETWEEN 0 AND 1000),
    retention        interval CHECK (retention > interval '0'),
    retention_action text NOT NULL DEFAULT 'archive' CHECK (retention_action IN ('archive', 'drop')),
    retire_with      regclass REFERENCES @extschema@.partition_sets (parent) ON DELETE CASCADE,
    time_zone        text NOT NULL,
    builtin          boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_run         timestamptz,
    last_error       text,
    CHECK (retire_with IS DISTINCT FROM parent)
);
COMMENT ON TABLE @extschema@.partition_sets IS
  'Partition sets kept by run_maintenance: one row per range-partitioned parent. retention/retention_action/premake may be updated directly. A set with retire_with follows that set: same schedule, retired in the same run and before it (its lines before the orders they reference).';
COMMENT ON COLUMN @extschema@.partition_sets.retention IS 'Partitions whose upper bound is older than now() - retention are retired; NULL keeps everything.';
COMMENT ON COLUMN @extschema@.partition_sets.retention_action IS 'archive (default): detach and move into schema elfsofa_archive, rows stay queryable; drop: detach and drop.';
COMMENT ON COLUMN @extschema@.partition_sets.retire_with IS 'Leader set: this set uses the leader''s retention and action and is retired first, in the same subtransaction.';
COMMENT ON COLUMN @extschema@.partition_sets.time_zone IS 'Time zone in which period boundaries (midnight, Monday, 1st of month) are computed; captured at registration.';
-- All rows are dumped: a restore's CREATE EXTENSION registers nothing (see 90_bootstrap_partitions.sql).
SELECT pg_catalog.pg_extension_config_dump('@extschema@.partition_sets', '');

CREATE FUNCTION @extschema@.partition_table(parent regclass, control_column text, part_interval interval,
                                            premake integer DEFAULT 4, retention interval DEFAULT NULL,
                                            retention_action text DEFAULT 'archive', retire_with regclass DEFAULT NULL)
RETURNS jsonb
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_partition_table';
COMMENT ON FUNCTION @extschema@.partition_table(regclass, text, interval, integer, interval, text, regclass) IS
  'Registers (or re-registers with new settings) a RANGE-partitioned table on a timestamptz/date column with a 1 day/week/month/year interval (or a multiple) and creates partitions from the current period to premake periods ahead. Returns {"parent","created":[...]}. 22023 on bad input, PT404 on an unknown table.';

CREATE FUNCTION @extschema@.run_maintenance(parent regclass DEFAULT NULL)
RETURNS jsonb
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_run_maintenance';
COMMENT ON FUNCTION @extschema@.run_maintenance(regclass) IS
  'Keeps every registered set (or one, with its linked sets) premade ahead of now() and retires partitions wholly past retention, reading bounds from the catalog only. One subtransaction per set; a busy set (another run holds it) is skipped. Returns {"sets":[{"parent","created","retired","error","skipped"}],"created":n,"retired":n,"errors":n}.';

CREATE FUNCTION @extschema@.partition_reach(parent regclass)
RETURNS timestamptz
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'elfsofa_partition_reach';
COMMENT ON FUNCTION @extschema@.partition_reach(regclass) IS
  'Upper bound of the newest partition of a range-partitioned table (how far ahead it reaches), from the catalog; NULL when it has none.';

CREATE VIEW @extschema@.partition_status AS
SELECT s.parent,
       s.control_column,
       s.part_interval,
       s.premake,
       COALESCE(l.retention, s.retention) AS retention,
       COALESCE(l.retention_action, s.retention_action) AS retention_action,
       s.retire_with,
       (SELECT count(*) FROM pg_catalog.pg_inherits i WHERE i.inhparent = s.parent) AS partitions,
       @extschema@.partition_reach(s.parent) AS reaches_until,
       s.last_run,
       s.last_error
  FROM @extschema@.partition_sets s
  LEFT JOIN @extschema@.partition_sets l ON l.parent = s.retire_with;

COMMENT ON VIEW @extschema@.partition_status IS
  'One row per partition set: interval, premake, effective retention and action (a linked set shows its leader''s), partition count, upper bound of the newest partition, last maintenance run and its error.';

CREATE FUNCTION @extschema@.archive_rows(tbl regclass, time_column text, older_than interval, batch_size integer DEFAULT 10000)
RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_archive_rows';
COMMENT ON FUNCTION @extschema@.archive_rows(regclass, text, interval, integer) IS
  'Moves rows of an unpartitioned table whose time_column is older than now() - older_than into elfsofa_archive.<same name> (created LIKE the table when missing), batch_size rows per atomic DELETE ... RETURNING / INSERT. Runs in the caller''s transaction: killed, it rolls back whole. Progress shows in pg_stat_activity.query. Returns the rows moved.';

CREATE PROCEDURE @extschema@.archive_rows_batched(tbl regclass, time_column text, older_than interval,
                                                  batch_size integer DEFAULT 10000, INOUT moved bigint DEFAULT NULL)
LANGUAGE c
AS 'MODULE_PATHNAME', 'elfsofa_archive_rows';
COMMENT ON PROCEDURE @extschema@.archive_rows_batched(regclass, text, interval, integer, bigint) IS
  'Like archive_rows but commits after every batch (CALL it outside a transaction block): killed, it keeps what earlier batches moved and a rerun continues. Each batch is one atomic move, so no row is lost or duplicated.';

CREATE FUNCTION @extschema@.daily_upkeep()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    done jsonb := '{}';
    n    bigint;
BEGIN
    -- Upkeep functions of other areas are called when installed (looked up at run time, not at
    -- schedule time, so the job never needs re-registering when an area lands or leaves).
    IF to_regprocedure('@extschema@.purge_idempotency_keys()') IS NOT NULL THEN
        EXECUTE 'SELECT @extschema@.purge_idempotency_keys()::bigint' INTO n;
        done := done || jsonb_build_object('purge_idempotency_keys', n);
    END IF;
    IF to_regprocedure('@extschema@.abandon_carts(interval)') IS NOT NULL THEN
        EXECUTE 'SELECT @extschema@.abandon_carts(NULL)::bigint' INTO n;
        done := done || jsonb_build_object('abandon_carts', n);
    END IF;
    IF to_regprocedure('@extschema@.purge_notifications()') IS NOT NULL THEN
        EXECUTE 'SELECT count(*) FROM (SELECT @extschema@.purge_notifications()) x' INTO n;
        done := done || jsonb_build_object('purge_notifications', n);
    END IF;
    done := done || jsonb_build_object('maintenance', @extschema@.run_maintenance());
    RETURN done;
END
$$;
COMMENT ON FUNCTION @extschema@.daily_upkeep() IS
  'Daily job body: expired idempotency keys, abandoned carts and notification upkeep (each called only when that function is installed), then a full partition maintenance and retention run. Returns what it ran.';

CREATE FUNCTION @extschema@.schedule_maintenance(maintenance_schedule text DEFAULT '17 * * * *',
                                                 daily_schedule text DEFAULT '37 3 * * *',
                                                 keep_history interval DEFAULT '14 days')
RETURNS jsonb
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_schedule_maintenance';
COMMENT ON FUNCTION @extschema@.schedule_maintenance(text, text, interval) IS
  'Registers or updates the pg_cron jobs for this database: elfsofa-maintenance-<db> (run_maintenance, hourly), elfsofa-daily-<db> (daily_upkeep) and elfsofa-cron-history (deletes cron.job_run_details older than keep_history). Works from any database (jobs go through cron.schedule_in_database in cron.database_name). 55000 when pg_cron is not loaded.';

CREATE FUNCTION @extschema@.unschedule_maintenance()
RETURNS integer
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_unschedule_maintenance';
COMMENT ON FUNCTION @extschema@.unschedule_maintenance() IS
  'Removes this database''s elfsofa pg_cron jobs (the shared history job stays while another database uses it); returns how many were removed.';
