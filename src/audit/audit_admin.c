/*
 * audit_admin.c — enable_audit and disable_audit: attaching and removing the
 * audit triggers of a table.
 *
 * Both replace whatever audit triggers the table has, so calling them again
 * is harmless; partitions audited through a partitioned parent are refused,
 * since their triggers are clones of the parent's.
 */
#include "audit/audit.h"

#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "parser/parse_relation.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(es_enable_audit);
PG_FUNCTION_INFO_V1(es_disable_audit);

static void
audit_spi_ddl(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "elfsofa: SPI failed (%s) running \"%s\"", SPI_result_code_string(rc), sql);
}

/* Which of our two triggers rel has, and whether the row trigger is a clone. */
static void
audit_trigger_state(Oid relid, bool *has_row, bool *has_truncate, bool *is_clone)
{
	static EsPlan plan = {
		"SELECT tgname::text, tgparentid <> 0 FROM pg_catalog.pg_trigger WHERE tgrelid = $1 "
		"AND tgname IN ('" AUDIT_ROW_TRIGGER "', '" AUDIT_TRUNCATE_TRIGGER "')",
		1, {OIDOID}
	};
	Datum		v[1] = {ObjectIdGetDatum(relid)};

	*has_row = *has_truncate = *is_clone = false;
	es_exec(&plan, v, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		if (strcmp(name, AUDIT_ROW_TRIGGER) == 0)
		{
			*has_row = true;
			*is_clone = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		}
		else
			*has_truncate = true;
	}
}

/* Drops our triggers from qualname (quietly: only those that exist). */
static void
audit_drop_triggers(const char *qualname, bool has_row, bool has_truncate)
{
	StringInfoData sql;

	initStringInfo(&sql);
	if (has_row)
	{
		appendStringInfo(&sql, "DROP TRIGGER %s ON %s", quote_identifier(AUDIT_ROW_TRIGGER), qualname);
		audit_spi_ddl(sql.data);
	}
	if (has_truncate)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql, "DROP TRIGGER %s ON %s", quote_identifier(AUDIT_TRUNCATE_TRIGGER), qualname);
		audit_spi_ddl(sql.data);
	}
}

/* Opens the table to (un)audit and checks it is a table we may touch. */
static Relation
audit_open_target(FunctionCallInfo fcinfo, char **qualname)
{
	Oid			relid;
	Relation	rel;
	Oid			nsp;
	Oid			logid;

	es_arg_not_null(fcinfo, 0, "tbl");
	relid = PG_GETARG_OID(0);
	rel = es_open_relation_arg(relid, "tbl", AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("only tables can be audited"),
				 errdetail("\"%s\" is not a table.", RelationGetRelationName(rel))));
	nsp = get_namespace_oid("elfsofa", true);
	logid = OidIsValid(nsp) ? get_relname_relid("audit_log", nsp) : InvalidOid;
	if (relid == logid || (rel->rd_rel->relispartition && OidIsValid(logid) &&
						   get_partition_parent(relid, true) == logid))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the audit log cannot be audited"),
				 errdetail("Argument \"tbl\" was %s.", RelationGetRelationName(rel))));
	*qualname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										   RelationGetRelationName(rel));
	return rel;
}

static void
audit_refuse_clone(Relation rel, bool is_clone)
{
	if (is_clone)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is audited through its partitioned parent",
						RelationGetRelationName(rel)),
				 errdetail("Its audit trigger was cloned from the parent table."),
				 errhint("Call enable_audit or disable_audit on the partitioned table.")));
}

Datum
es_enable_audit(PG_FUNCTION_ARGS)
{
	char	   *qualname;
	Relation	rel = audit_open_target(fcinfo, &qualname);
	TupleDesc	desc = RelationGetDescr(rel);
	Bitmapset  *keys = audit_key_columns(rel);
	Datum	   *elems = NULL;
	bool	   *elnulls = NULL;
	int			nelems = 0;
	StringInfoData sql;
	StringInfoData args;
	bool		has_row,
				has_truncate,
				is_clone;

	if (!PG_ARGISNULL(1))
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &elnulls, &nelems);

	initStringInfo(&args);
	for (int i = 0; i < nelems; i++)
	{
		char	   *col;
		int			attnum;
		bool		dup = false;

		if (elnulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("exclude_columns must not contain nulls"),
					 errdetail("exclude_columns[%d] was null.", i + 1)));
		col = TextDatumGetCString(elems[i]);
		attnum = attnameAttNum(rel, col, false);
		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column \"%s\" of table %s does not exist", col, qualname),
					 errdetail("exclude_columns[%d] was \"%s\", which is not a column of %s.",
							   i + 1, col, qualname)));
		if (bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber, keys))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key column \"%s\" cannot be excluded from the audit", col),
					 errdetail("exclude_columns[%d] was \"%s\", which is part of the key of %s.",
							   i + 1, col, qualname),
					 errhint("Audit rows are identified by the primary key.")));
		for (int j = 0; j < i; j++)
			if (!elnulls[j] && strcmp(TextDatumGetCString(elems[j]), col) == 0)
				dup = true;
		if (dup)
			continue;
		appendStringInfo(&args, "%s%s", args.len > 0 ? ", " : "",
						 quote_literal_cstr(psprintf("%d:%s", attnum, col)));
	}
	(void) desc;

	if (bms_is_empty(keys))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s has no primary key", qualname),
				 errdetail("Audit rows identify the changed row by its primary key."),
				 errhint("Add a primary key (or set REPLICA IDENTITY USING INDEX on a unique index) and call enable_audit again.")));

	SPI_connect();
	audit_trigger_state(RelationGetRelid(rel), &has_row, &has_truncate, &is_clone);
	audit_refuse_clone(rel, is_clone);
	audit_drop_triggers(qualname, has_row, has_truncate);

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s "
					 "FOR EACH ROW EXECUTE FUNCTION elfsofa.audit_trigger(%s)",
					 quote_identifier(AUDIT_ROW_TRIGGER), qualname, args.data);
	audit_spi_ddl(sql.data);
	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "CREATE TRIGGER %s AFTER TRUNCATE ON %s "
					 "FOR EACH STATEMENT EXECUTE FUNCTION elfsofa.audit_trigger()",
					 quote_identifier(AUDIT_TRUNCATE_TRIGGER), qualname);
	audit_spi_ddl(sql.data);
	SPI_finish();

	relation_close(rel, NoLock);
	PG_RETURN_VOID();
}

Datum
es_disable_audit(PG_FUNCTION_ARGS)
{
	char	   *qualname;
	Relation	rel = audit_open_target(fcinfo, &qualname);
	bool		has_row,
				has_truncate,
				is_clone;

	SPI_connect();
	audit_trigger_state(RelationGetRelid(rel), &has_row, &has_truncate, &is_clone);
	audit_refuse_clone(rel, is_clone);
	audit_drop_triggers(qualname, has_row, has_truncate);
	SPI_finish();
	relation_close(rel, NoLock);
	PG_RETURN_BOOL(has_row || has_truncate);
}
