-- elfsofa install script, part 99 (runs last): mark every table and sequence
-- elfsofa creates, so pg_dump dumps their rows.  Without this a dump leaves
-- them out and the restore's CREATE EXTENSION recreates them empty: a restored
-- shop with no orders, and sequences that hand out ids already used.
--
-- Every relation that is a member of the extension is marked: the shop's
-- tables, the outbox, the audit log, the partitions this script created (a
-- partitioned parent holds no rows of its own: pg_dump dumps each partition)
-- and the sequences.  Partitions the partition manager makes later are not
-- members: pg_dump dumps them, with their rows, like any table.  A table whose
-- install script also inserts rows would be restored twice, so such a table
-- needs a filter here; test/scripts/82_reliability_dump_restore.sh compares
-- every table's rows after a restore and fails when one is missing or doubled.
DO $config_dump$
DECLARE
    r   regclass;
BEGIN
    FOR r IN
        SELECT c.oid::regclass
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
          JOIN pg_catalog.pg_class c ON c.oid = d.objid
         WHERE d.classid = 'pg_catalog.pg_class'::regclass
           AND d.refclassid = 'pg_catalog.pg_extension'::regclass
           AND d.deptype = 'e'
           AND e.extname = 'elfsofa'
           AND c.relkind IN ('r', 'S')
         ORDER BY c.oid
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(r, '');
    END LOOP;
END
$config_dump$;
