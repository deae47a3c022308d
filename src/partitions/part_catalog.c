/*
 * part_catalog.c — what the partition manager reads: the registered sets in
 * elfsofa.partition_sets, each partition's bounds, and the checks a parent
 * must pass to be managed.
 *
 * Bounds come from the catalog alone (pg_inherits + pg_class.relpartbound):
 * no data is ever scanned.  A parent is checked again on every run, since it
 * may have been altered, repartitioned or moved since it was registered.
 */
#include "partitions/partitions.h"

#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

static int64
datum_key(Oid keytype, Datum d)
{
	if (keytype == DATEOID)
		return DatumGetDateADT(d);
	return DatumGetTimestampTz(d);
}

/* Bounds of every partition of parent, straight from pg_class.relpartbound. */
List *
part_read_bounds(Oid parent, Oid keytype)
{
	List	   *children = find_inheritance_children(parent, NoLock);
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, children)
	{
		Oid			child = lfirst_oid(lc);
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(child));
		Datum		d;
		bool		isnull;
		PartitionBoundSpec *spec;
		Bound	   *b;

		if (!HeapTupleIsValid(tup))
			continue;			/* dropped meanwhile */
		d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relpartbound, &isnull);
		if (isnull)
		{
			ReleaseSysCache(tup);
			continue;
		}
		spec = (PartitionBoundSpec *) stringToNode(TextDatumGetCString(d));
		ReleaseSysCache(tup);

		b = palloc0(sizeof(Bound));
		b->relid = child;
		b->is_default = spec->is_default;
		if (!spec->is_default && spec->strategy == PARTITION_STRATEGY_RANGE)
		{
			PartitionRangeDatum *lo = linitial_node(PartitionRangeDatum, spec->lowerdatums);
			PartitionRangeDatum *hi = linitial_node(PartitionRangeDatum, spec->upperdatums);

			b->lo = lo->kind == PARTITION_RANGE_DATUM_VALUE ?
				datum_key(keytype, castNode(Const, lo->value)->constvalue) :
				(lo->kind == PARTITION_RANGE_DATUM_MINVALUE ? PG_INT64_MIN : PG_INT64_MAX);
			b->hi = hi->kind == PARTITION_RANGE_DATUM_VALUE ?
				datum_key(keytype, castNode(Const, hi->value)->constvalue) :
				(hi->kind == PARTITION_RANGE_DATUM_MINVALUE ? PG_INT64_MIN : PG_INT64_MAX);
		}
		result = lappend(result, b);
	}
	return result;
}

bool
part_overlaps(List *bounds, int64 lo, int64 hi)
{
	ListCell   *lc;

	foreach(lc, bounds)
	{
		Bound	   *b = lfirst(lc);

		if (!b->is_default && lo < b->hi && b->lo < hi)
			return true;
	}
	return false;
}

bool
part_has_default(List *bounds)
{
	ListCell   *lc;

	foreach(lc, bounds)
	{
		if (((Bound *) lfirst(lc))->is_default)
			return true;
	}
	return false;
}

/* Validates a parent and returns its key type; raises 22023/PT404/42501 with details. */
Oid
part_check_parent(Oid relid, const char *column)
{
	Relation	rel;
	PartitionKey key;
	AttrNumber	attnum;
	Oid			keytype;
	char	   *relname;

	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		ereport(ERROR,
				(errcode(ES_ERRCODE_NOT_FOUND),
				 errmsg("unknown table"),
				 errdetail("No relation has OID %u.", relid)));
	rel = relation_open(relid, AccessShareLock);
	relname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										 RelationGetRelationName(rel));
	if (!es_rel_ownercheck(relid, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s", relname),
				 errdetail("Only the owner of %s can register it for partition maintenance.", relname)));
	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		es_invalid_arg("table is not partitioned",
				  psprintf("Table %s is not a partitioned table.", relname),
				  "Create it with PARTITION BY RANGE (control_column).");
	if (RelationGetNamespace(rel) == get_namespace_oid("elfsofa_archive", true))
		es_invalid_arg("archived tables cannot be managed",
				  psprintf("Table %s is in schema elfsofa_archive.", relname), NULL);
	if (rel->rd_rel->relispartition)
		es_invalid_arg("table is itself a partition",
				  psprintf("Table %s is a partition; register its top-level parent.", relname), NULL);
	attnum = get_attnum(relid, column);
	if (attnum == InvalidAttrNumber || attnum < 0)
		es_invalid_arg("control column does not exist",
				  psprintf("Table %s has no column \"%s\".", relname, column), NULL);
	key = RelationGetPartitionKey(rel);
	if (key->strategy != PARTITION_STRATEGY_RANGE)
		es_invalid_arg("table is not partitioned by range",
				  psprintf("Table %s is partitioned by %s.", relname,
						   key->strategy == PARTITION_STRATEGY_LIST ? "LIST" : "HASH"),
				  "Only RANGE partitioning by a timestamptz or date column is managed.");
	if (key->partnatts != 1 || key->partattrs[0] != attnum)
		es_invalid_arg("table is not partitioned by the control column",
				  psprintf("Table %s is not partitioned by exactly column \"%s\".", relname, column),
				  NULL);
	keytype = key->parttypid[0];
	if (keytype != TIMESTAMPTZOID && keytype != DATEOID)
		es_invalid_arg("control column must be timestamptz or date",
				  psprintf("Column \"%s\" of %s has type %s.", column, relname, format_type_be(keytype)),
				  NULL);
	relation_close(rel, AccessShareLock);
	return keytype;
}

static EsPlan load_plan = {
	"SELECT s.parent::oid, s.retire_with::oid, s.control_column, s.part_interval, s.premake, "
	"       COALESCE(l.retention, CASE WHEN s.retire_with IS NULL THEN s.retention END), "
	"       COALESCE(l.retention_action, s.retention_action) = 'drop', s.time_zone "
	"  FROM elfsofa.partition_sets s LEFT JOIN elfsofa.partition_sets l ON l.parent = s.retire_with "
	" WHERE $1::oid IS NULL OR s.parent::oid = $1 OR s.retire_with::oid = $1 "
	"    OR s.parent::oid = (SELECT retire_with::oid FROM elfsofa.partition_sets WHERE parent::oid = $1) "
	"    OR s.retire_with::oid = (SELECT retire_with::oid FROM elfsofa.partition_sets WHERE parent::oid = $1) "
	" ORDER BY COALESCE(s.retire_with, s.parent)::oid, s.retire_with IS NOT NULL, s.parent::oid",
	1, {OIDOID}
};

/* Reads sets (all, or the group of one parent) ordered leader first, followers after. */
List *
part_load_sets(Oid only)
{
	Datum		v[1];
	char		nulls[1] = {' '};
	List	   *sets = NIL;

	v[0] = ObjectIdGetDatum(only);
	if (!OidIsValid(only))
		nulls[0] = 'n';
	es_exec(&load_plan, v, nulls, false, 0);	/* not read-only: must see a row upserted just before */
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		PartSet    *s = palloc0(sizeof(PartSet));
		Datum		d;

		s->parent = DatumGetObjectId(SPI_getbinval(t, td, 1, &isnull));
		d = SPI_getbinval(t, td, 2, &isnull);
		s->leader = isnull ? InvalidOid : DatumGetObjectId(d);
		s->control_column = SPI_getvalue(t, td, 3);
		s->interval = (Interval *) palloc(sizeof(Interval));
		memcpy(s->interval, DatumGetIntervalP(SPI_getbinval(t, td, 4, &isnull)), sizeof(Interval));
		s->premake = DatumGetInt32(SPI_getbinval(t, td, 5, &isnull));
		d = SPI_getbinval(t, td, 6, &isnull);
		if (!isnull)
		{
			s->retention = (Interval *) palloc(sizeof(Interval));
			memcpy(s->retention, DatumGetIntervalP(d), sizeof(Interval));
		}
		s->drop = DatumGetBool(SPI_getbinval(t, td, 7, &isnull));
		s->time_zone = SPI_getvalue(t, td, 8);
		if (!part_parse_period(s->interval, &s->unit, &s->n))
		{
			s->n = 0;			/* reported as an error for this set */
		}
		sets = lappend(sets, s);
	}
	return sets;
}

/* The key type of a set's parent, or an error naming what changed under us. */
void
part_resolve_keytype(PartSet *s)
{
	if (s->n == 0)
		es_invalid_arg("unsupported partition interval",
				  "The set's part_interval is not a whole number of days, weeks, months or years.", NULL);
	s->keytype = part_check_parent(s->parent, s->control_column);
}
