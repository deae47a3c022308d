-- elfsofa install script, part 99 (runs last): mark the tables and sequences
-- elfsofa creates so that pg_dump dumps their rows.  Without this a dump leaves
-- them out and the restore's CREATE EXTENSION recreates them empty: a restored
-- shop with no orders, and sequences that hand out ids already used.
--
-- Marked: every table and sequence that is a member of the extension, except
--  * those another part already marked (it may have chosen a filter, e.g.
--    partition_sets dumps only the rows users registered), and
--  * tables that already hold rows now, at the end of the install script: the
--    script filled them itself (configuration, runtime state), CREATE EXTENSION
--    fills them again on restore, and dumping their rows would double them.
--    An area that wants such a table's later rows dumped marks it itself, with
--    a filter that leaves its own rows out.
-- Partitions are not extension members (the partition manager makes them as
-- ordinary tables), so pg_dump dumps them, rows included, like any table.
-- test/scripts/82_reliability_dump_restore.sh compares every table after a
-- restore and fails when rows are missing or doubled.
DO $config_dump$
DECLARE
    r       regclass;
    kind    "char";
    seeded  boolean;
BEGIN
    FOR r, kind IN
        SELECT c.oid::regclass, c.relkind
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
          JOIN pg_catalog.pg_class c ON c.oid = d.objid
         WHERE d.classid = 'pg_catalog.pg_class'::regclass
           AND d.refclassid = 'pg_catalog.pg_extension'::regclass
           AND d.deptype = 'e'
           AND e.extname = 'elfsofa'
           AND c.relkind IN ('r', 'S')
           AND NOT (c.oid = ANY (coalesce(e.extconfig, '{}')))
         ORDER BY c.oid
    LOOP
        IF kind = 'r' THEN
            EXECUTE format('SELECT EXISTS (SELECT FROM %s)', r) INTO seeded;
            CONTINUE WHEN seeded;
        END IF;
        PERFORM pg_catalog.pg_extension_config_dump(r, '');
    END LOOP;
END
$config_dump$;
