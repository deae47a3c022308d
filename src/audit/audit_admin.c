/*
 * audit_admin.c — enable_audit and disable_audit: attaching and removing the
 * audit triggers of a table.
 *
 * Both replace whatever audit triggers the table has, so calling them again
 * is harmless; partitions audited through a partitioned parent are refused,
 * since their triggers are clones of the parent's.  A table's inheritance
 * children are (un)audited with it: a parent's row triggers do not fire for
 * their rows.  The triggers fire ALWAYS, in session_replication_role replica
 * too (src/audit/audit_trigger.c decides whether to write), and each call
 * writes an audit_log row of its own, ENABLE AUDIT or DISABLE AUDIT, per table.
 */
#include "audit/audit.h"

#include "access/relation.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "parser/parse_relation.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(es_enable_audit);
PG_FUNCTION_INFO_V1(es_disable_audit);

static int	admin_depth = 0;

/* Whether enable_audit/disable_audit run DDL now (they record their own event). */
bool
audit_admin_running(void)
{
	return admin_depth > 0;
}

static void
audit_spi_ddl(const char *sql)
{
	int			rc;

	admin_depth++;
	PG_TRY();
	{
		rc = SPI_execute(sql, false, 0);
	}
	PG_FINALLY();
	{
		admin_depth--;
	}
	PG_END_TRY();
	if (rc < 0)
		elog(ERROR, "elfsofa: SPI failed (%s) running \"%s\"", SPI_result_code_string(rc), sql);
}

/* Whether this call should write its ENABLE AUDIT / DISABLE AUDIT row. */
static bool
audit_admin_records(void)
{
	return !creating_extension && !audit_quiet();
}

/* The table and its inheritance children (partitions are covered by cloned triggers). */
static List *
audit_targets(Relation rel)
{
	if (rel->rd_rel->relkind == RELKIND_RELATION && rel->rd_rel->relhassubclass)
		return find_all_inheritors(RelationGetRelid(rel), AccessShareLock, NULL);
	return list_make1_oid(RelationGetRelid(rel));
}

static char *
audit_qualname(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
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

/* The event row of enable_audit: {"exclude_columns": [...], "via": parent (a child)}. */
static char *
audit_enable_json(List *excluded, Oid via)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"exclude_columns\": [");
	foreach(lc, excluded)
	{
		if (foreach_current_index(lc) > 0)
			appendStringInfoString(&buf, ", ");
		es_json_quote(&buf, (char *) lfirst(lc));
	}
	appendStringInfoChar(&buf, ']');
	if (OidIsValid(via))
	{
		appendStringInfoString(&buf, ", \"via\": ");
		es_json_quote(&buf, audit_qualname(via));
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* Attaches the audit triggers to one table (SPI connected); excluded are column names. */
static void
audit_enable_one(Oid relid, List *excluded, Oid via)
{
	Relation	rel = table_open(relid, AccessShareLock);
	char	   *qualname = audit_qualname(relid);
	Bitmapset  *keys = audit_key_columns(rel);
	StringInfoData sql;
	StringInfoData args;
	bool		has_row,
				has_truncate,
				is_clone;
	ListCell   *lc;

	initStringInfo(&args);
	foreach(lc, excluded)
	{
		char	   *col = lfirst(lc);
		int			attnum = attnameAttNum(rel, col, false);
		int			i = foreach_current_index(lc) + 1;

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column \"%s\" of table %s does not exist", col, qualname),
					 errdetail("exclude_columns[%d] was \"%s\", which is not a column of %s.",
							   i, col, qualname)));
		if (bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber, keys))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key column \"%s\" cannot be excluded from the audit", col),
					 errdetail("exclude_columns[%d] was \"%s\", which is part of the key of %s.",
							   i, col, qualname),
					 errhint("Audit rows are identified by the primary key.")));
		appendStringInfo(&args, "%s%s", args.len > 0 ? ", " : "",
						 quote_literal_cstr(psprintf("%d:%s", attnum, col)));
	}

	if (bms_is_empty(keys))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s has no primary key", qualname),
				 OidIsValid(via) ? errdetail("Audit rows identify the changed row by its primary key; %s is an inheritance child of %s, audited with it.",
											 qualname, audit_qualname(via))
				 : errdetail("Audit rows identify the changed row by its primary key."),
				 errhint("Add a primary key (or set REPLICA IDENTITY USING INDEX on a unique index) and call enable_audit again.")));

	audit_trigger_state(relid, &has_row, &has_truncate, &is_clone);
	audit_refuse_clone(rel, is_clone);
	/* ALTER TABLE refuses a table this session holds open; the lock stays */
	table_close(rel, NoLock);
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
	/* in replica mode as well: ordinary triggers would not fire there */
	resetStringInfo(&sql);
	appendStringInfo(&sql, "ALTER TABLE %s ENABLE ALWAYS TRIGGER %s, ENABLE ALWAYS TRIGGER %s",
					 qualname, quote_identifier(AUDIT_ROW_TRIGGER), quote_identifier(AUDIT_TRUNCATE_TRIGGER));
	audit_spi_ddl(sql.data);
	if (audit_admin_records())
		audit_table_event(relid, "ENABLE AUDIT", audit_enable_json(excluded, via));
}

/*
 * A new inheritance child of an audited table (CREATE TABLE ... INHERITS,
 * ALTER TABLE ... INHERIT; src/audit/audit_trigger.c's utility hook) is
 * audited like the parent's other children, with the parent's exclusions; one
 * without a primary key fails its statement.
 */
void
audit_enable_inherited(Oid child, Oid parent)
{
	Relation	prel = table_open(parent, AccessShareLock);
	List	   *excluded = NIL;

	for (int i = 0; prel->trigdesc && i < prel->trigdesc->numtriggers; i++)
	{
		Trigger    *tg = &prel->trigdesc->triggers[i];
		char	  **names;
		int			n;

		if (strcmp(tg->tgname, AUDIT_ROW_TRIGGER) != 0)
			continue;
		names = audit_excluded_names(tg, parent, &n);
		for (int a = 0; a < n; a++)
			excluded = lappend(excluded, names[a]);
	}
	table_close(prel, NoLock);
	SPI_connect();
	audit_enable_one(child, excluded, parent);
	SPI_finish();
}

Datum
es_enable_audit(PG_FUNCTION_ARGS)
{
	char	   *qualname;
	Relation	rel = audit_open_target(fcinfo, &qualname);
	Datum	   *elems = NULL;
	bool	   *elnulls = NULL;
	int			nelems = 0;
	List	   *excluded = NIL;
	List	   *targets;
	ListCell   *lc;
	Oid			relid;

	if (!PG_ARGISNULL(1))
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &elnulls, &nelems);
	for (int i = 0; i < nelems; i++)
	{
		char	   *col;
		bool		dup = false;

		if (elnulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("exclude_columns must not contain nulls"),
					 errdetail("exclude_columns[%d] was null.", i + 1)));
		col = TextDatumGetCString(elems[i]);
		foreach(lc, excluded)
			dup = dup || strcmp((char *) lfirst(lc), col) == 0;
		if (!dup)
			excluded = lappend(excluded, col);
	}

	targets = audit_targets(rel);
	relid = RelationGetRelid(rel);
	relation_close(rel, NoLock);
	SPI_connect();
	foreach(lc, targets)
		audit_enable_one(lfirst_oid(lc), excluded, lfirst_oid(lc) == relid ? InvalidOid : relid);
	SPI_finish();
	PG_RETURN_VOID();
}

Datum
es_disable_audit(PG_FUNCTION_ARGS)
{
	char	   *qualname;
	Relation	rel = audit_open_target(fcinfo, &qualname);
	List	   *targets = audit_targets(rel);
	bool		had_any = false;
	ListCell   *lc;

	SPI_connect();
	foreach(lc, targets)
	{
		Oid			relid = lfirst_oid(lc);
		bool		has_row,
					has_truncate,
					is_clone;

		audit_trigger_state(relid, &has_row, &has_truncate, &is_clone);
		if (relid == RelationGetRelid(rel))
			audit_refuse_clone(rel, is_clone);
		else if (is_clone)
			continue;
		if (!has_row && !has_truncate)
			continue;
		had_any = true;
		if (audit_admin_records())
			audit_table_event(relid, "DISABLE AUDIT", NULL);
		audit_drop_triggers(audit_qualname(relid), has_row, has_truncate);
	}
	SPI_finish();
	relation_close(rel, NoLock);
	PG_RETURN_BOOL(had_any);
}
