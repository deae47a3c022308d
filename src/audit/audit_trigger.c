/*
 * audit_trigger.c — the audit trigger, the audit_log append-only guard, and
 * the hooks that keep audit_log complete and append-only.
 *
 * The trigger turns one changed row (or a TRUNCATE) into one audit_log row;
 * an UPDATE compares old and new datums in C, so unchanged columns cost
 * nothing and unchanged toasted ones are not even fetched.  The
 * ProcessUtility hook refuses TRUNCATE of audit_log and records TRUNCATE of
 * a partition of an audited table; the ExecutorStart hook writes deferred
 * audit index entries before any query can read them.
 */
#include "audit/audit.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(es_audit_trigger);
PG_FUNCTION_INFO_V1(es_audit_log_guard);

/* ---------------------------------------------------------------------
 * The trigger
 * --------------------------------------------------------------------- */

/*
 * A TRUNCATE of rel, or (partition != InvalidOid) of that one partition of
 * the audited rel: new_data then names it, {"partition": "schema.name"}.
 */
static void
audit_truncate(Relation rel, Oid partition)
{
	Datum		vals[AL_NCOLS];
	bool		nulls[AL_NCOLS];
	char	   *nsp = get_namespace_name(RelationGetNamespace(rel));

	for (int c = 0; c < AL_NCOLS; c++)
		nulls[c] = true;
	vals[AL_SCHEMA] = CStringGetTextDatum(nsp);
	nulls[AL_SCHEMA] = false;
	vals[AL_TABLE] = CStringGetTextDatum(RelationGetRelationName(rel));
	nulls[AL_TABLE] = false;
	vals[AL_OPERATION] = audit_xact.op_text[OP_TRUNCATE];
	nulls[AL_OPERATION] = false;
	if (OidIsValid(partition))
	{
		JsonbParseState *st = NULL;
		JsonbValue	k,
					v;
		char	   *name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(partition)),
													  get_rel_name(partition));

		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		k.type = jbvString;
		k.val.string.val = "partition";
		k.val.string.len = strlen("partition");
		pushJsonbValue(&st, WJB_KEY, &k);
		v.type = jbvString;
		v.val.string.val = name;
		v.val.string.len = strlen(name);
		pushJsonbValue(&st, WJB_VALUE, &v);
		vals[AL_NEW_DATA] = JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL)));
		nulls[AL_NEW_DATA] = false;
	}
	audit_insert(vals, nulls);
}

/*
 * Whether an UPDATE left a column's value as it was.  An unchanged toasted
 * value keeps its toast pointer, and equal pointers mean equal values, so
 * the value is not fetched and decompressed twice to find out.
 */
static bool
audit_datum_same(Datum a, Datum b, AuditCol *c)
{
	if (c->typlen == -1)
	{
		struct varlena *va = (struct varlena *) DatumGetPointer(a);
		struct varlena *vb = (struct varlena *) DatumGetPointer(b);

		if (VARATT_IS_EXTERNAL_ONDISK(va) && VARATT_IS_EXTERNAL_ONDISK(vb) &&
			VARSIZE_EXTERNAL(va) == VARSIZE_EXTERNAL(vb) &&
			memcmp(va, vb, VARSIZE_EXTERNAL(va)) == 0)
			return true;
	}
	return datum_image_eq(a, b, c->typbyval, c->typlen);
}

static void
audit_row(TriggerData *td, int op)
{
	AuditRel   *e = audit_get_rel(td->tg_relation, td->tg_trigger);
	TupleTableSlot *oldslot = (op == OP_INSERT) ? NULL : td->tg_trigslot;
	TupleTableSlot *newslot = (op == OP_INSERT) ? td->tg_trigslot
		: (op == OP_UPDATE) ? td->tg_newslot : NULL;
	Datum		vals[AL_NCOLS];
	bool		nulls[AL_NCOLS];
	Jsonb	   *pk;

	for (int c = 0; c < AL_NCOLS; c++)
		nulls[c] = true;
	if (oldslot)
		slot_getallattrs(oldslot);
	if (newslot)
		slot_getallattrs(newslot);

	if (op == OP_UPDATE)
	{
		Datum	   *ov = oldslot->tts_values,
				   *nv = newslot->tts_values;
		bool	   *on = oldslot->tts_isnull,
				   *nn = newslot->tts_isnull;
		Datum	   *names = palloc(sizeof(Datum) * Max(e->natts, 1));
		bool	   *changed = palloc0(sizeof(bool) * Max(e->natts, 1));
		int		   *order = palloc(sizeof(int) * Max(e->natts, 1));
		int			nchanged = 0;
		bool		key_changed = false;

		for (int i = 0; i < e->natts; i++)
		{
			AuditCol   *c = &e->cols[i];

			if (c->skip)
				continue;
			if (on[i] && nn[i])
				continue;
			if (!on[i] && !nn[i] && audit_datum_same(ov[i], nv[i], c))
				continue;
			changed[i] = true;
			names[nchanged++] = c->nametext;
			for (int k = 0; k < e->npk; k++)
				if (e->pk[k] == i + 1)
					key_changed = true;
		}
		if (nchanged == 0)
			return;				/* nothing (audited) changed: write nothing */
		nchanged = 0;
		for (int k = 0; k < e->nkeyorder; k++)
			if (changed[e->keyorder[k]])
				order[nchanged++] = e->keyorder[k];
		vals[AL_OLD_DATA] = JsonbPGetDatum(audit_json(e, order, nchanged, ov, on));
		nulls[AL_OLD_DATA] = false;
		vals[AL_NEW_DATA] = JsonbPGetDatum(audit_json(e, order, nchanged, nv, nn));
		nulls[AL_NEW_DATA] = false;
		vals[AL_CHANGED] = PointerGetDatum(construct_array(names, nchanged, TEXTOID, -1, false, TYPALIGN_INT));
		nulls[AL_CHANGED] = false;
		if (key_changed)
		{
			Jsonb	   *opk = audit_key_json(e, ov, on);

			if (opk)
			{
				vals[AL_OLD_PK] = JsonbPGetDatum(opk);
				nulls[AL_OLD_PK] = false;
			}
		}
		pk = audit_key_json(e, nv, nn);
	}
	else if (op == OP_INSERT)
	{
		/* keys only: the row itself is the first version (audit_row_image) */
		if (!e->insert_key_only)
		{
			vals[AL_NEW_DATA] = JsonbPGetDatum(audit_row_json(e, newslot->tts_values, newslot->tts_isnull));
			nulls[AL_NEW_DATA] = false;
		}
		pk = audit_key_json(e, newslot->tts_values, newslot->tts_isnull);
	}
	else
	{
		vals[AL_OLD_DATA] = JsonbPGetDatum(audit_row_json(e, oldslot->tts_values, oldslot->tts_isnull));
		nulls[AL_OLD_DATA] = false;
		pk = audit_key_json(e, oldslot->tts_values, oldslot->tts_isnull);
	}
	if (pk)
	{
		vals[AL_PK] = JsonbPGetDatum(pk);
		nulls[AL_PK] = false;
	}
	vals[AL_SCHEMA] = e->schema_name;
	nulls[AL_SCHEMA] = false;
	vals[AL_TABLE] = e->table_name;
	nulls[AL_TABLE] = false;
	vals[AL_OPERATION] = audit_xact.op_text[op];
	nulls[AL_OPERATION] = false;
	audit_refresh_facts();		/* cheap when nothing changed; after the no-op exit */
	audit_insert(vals, nulls);
}

/* AFTER ROW insert/update/delete and AFTER STATEMENT truncate. */
Datum
es_audit_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	int			op;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("elfsofa.audit_trigger() must be called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("elfsofa.audit_trigger() must be fired AFTER"),
				 errhint("Attach it with elfsofa.enable_audit().")));

	audit_register_callbacks();

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		audit_refresh_facts();
		audit_truncate(td->tg_relation, InvalidOid);
		return PointerGetDatum(NULL);
	}
	if (!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("elfsofa.audit_trigger() must be fired FOR EACH ROW for INSERT, UPDATE and DELETE"),
				 errhint("Attach it with elfsofa.enable_audit().")));
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		op = OP_INSERT;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		op = OP_UPDATE;
	else
		op = OP_DELETE;
	if (!audit_xact.active)
		audit_refresh_facts();	/* op_text lives in the transaction state */
	audit_row(td, op);
	return PointerGetDatum(NULL);
}

/* BEFORE UPDATE/DELETE/TRUNCATE on audit_log: the log is append-only. */
Datum
es_audit_log_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const char *what;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("elfsofa.audit_log_guard() must be called as a trigger")));
	what = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? "UPDATE"
		: TRIGGER_FIRED_BY_DELETE(td->tg_event) ? "DELETE"
		: TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) ? "TRUNCATE" : "INSERT";
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("audit log is append-only"),
			 errdetail("%s of %s.%s was refused.", what,
					   get_namespace_name(RelationGetNamespace(td->tg_relation)),
					   RelationGetRelationName(td->tg_relation)),
			 errhint("Old audit data leaves only through partition retention or archiving (elfsofa.run_maintenance).")));
	PG_RETURN_NULL();
}

/* ---------------------------------------------------------------------
 * TRUNCATE of an audit_log partition
 *
 * Statement triggers are not cloned onto partitions, and the partition
 * manager creates audit_log partitions at run time, so a direct TRUNCATE of
 * one is refused here instead (in every backend that has loaded elfsofa,
 * i.e. always when it is in shared_preload_libraries).  TRUNCATE of
 * audit_log itself is refused here first and by its statement trigger too.
 * --------------------------------------------------------------------- */

static void
audit_check_truncate(TruncateStmt *stmt)
{
	Oid			nsp = get_namespace_oid("elfsofa", true);
	Oid			logid = OidIsValid(nsp) ? get_relname_relid("audit_log", nsp) : InvalidOid;
	ListCell   *lc;

	if (!OidIsValid(logid))
		return;
	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = lfirst_node(RangeVar, lc);
		Oid			relid = RangeVarGetRelid(rv, NoLock, true);

		if (!OidIsValid(relid))
			continue;
		/* the root too: its trigger would only fire after the in-use check */
		if (relid == logid ||
			(get_rel_relispartition(relid) && list_member_oid(get_partition_ancestors(relid), logid)))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("audit log is append-only"),
					 errdetail("TRUNCATE of %s.%s was refused.",
							   get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid)),
					 errhint("Old audit data leaves only through partition retention or archiving (elfsofa.run_maintenance).")));
	}
}

/* Whether rel carries an enabled elfsofa audit TRUNCATE trigger. */
static bool
audit_records_truncate(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	bool		found = false;

	if (rel->trigdesc)
		for (int i = 0; i < rel->trigdesc->numtriggers && !found; i++)
		{
			Trigger    *t = &rel->trigdesc->triggers[i];

			found = strcmp(t->tgname, AUDIT_TRUNCATE_TRIGGER) == 0 && t->tgenabled != TRIGGER_DISABLED;
		}
	relation_close(rel, AccessShareLock);
	return found;
}

/*
 * Statement triggers are not cloned onto partitions either: a TRUNCATE aimed
 * at one partition of an audited partitioned table fires nothing.  Returns
 * (audited ancestor, partition) oid pairs to record once the TRUNCATE is done.
 */
static List *
audit_truncated_partitions(TruncateStmt *stmt)
{
	List	   *pairs = NIL;
	ListCell   *lc;

	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = lfirst_node(RangeVar, lc);
		Oid			relid = RangeVarGetRelid(rv, NoLock, true);
		ListCell   *ac;

		if (!OidIsValid(relid) || !get_rel_relispartition(relid))
			continue;
		foreach(ac, get_partition_ancestors(relid))
		{
			if (audit_records_truncate(lfirst_oid(ac)))
			{
				pairs = lappend_oid(pairs, lfirst_oid(ac));
				pairs = lappend_oid(pairs, relid);
				break;
			}
		}
	}
	return pairs;
}

/*
 * es_audit_utility_before runs before every utility statement (src/hooks.c):
 * it refuses a TRUNCATE of audit_log or of one of its partitions, and returns
 * the partitions of audited tables the statement truncates, as (audited
 * ancestor, partition) oid pairs for es_audit_utility_after.
 */
List *
es_audit_utility_before(PlannedStmt *pstmt)
{
	if (!IsA(pstmt->utilityStmt, TruncateStmt))
		return NIL;
	audit_check_truncate((TruncateStmt *) pstmt->utilityStmt);
	return audit_truncated_partitions((TruncateStmt *) pstmt->utilityStmt);
}

/*
 * es_audit_utility_after records, once the statement is done, a TRUNCATE row
 * for each partition es_audit_utility_before listed.
 */
void
es_audit_utility_after(List *truncated)
{
	for (int i = 0; i + 1 < list_length(truncated); i += 2)
	{
		Relation	audited = table_open(list_nth_oid(truncated, i), AccessShareLock);

		audit_register_callbacks();
		audit_refresh_facts();
		audit_truncate(audited, list_nth_oid(truncated, i + 1));
		table_close(audited, NoLock);
	}
}

/*
 * es_audit_executor_start writes the deferred audit index entries before any
 * query runs, at any nesting level, so that every query finds the audit
 * indexes complete.
 */
void
es_audit_executor_start(void)
{
	if (audit_xact.npending > 0 && !IsInParallelMode())
		audit_flush_index();
}
