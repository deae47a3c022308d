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

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "replication/worker_internal.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(es_audit_trigger);
PG_FUNCTION_INFO_V1(es_audit_log_guard);

bool		audit_replica_writes = true;

/* Defines the audit settings; called once from _PG_init. */
void
es_audit_init(void)
{
	DefineCustomBoolVariable("elfsofa.audit_replica_writes",
							 "Whether changes made with session_replication_role = replica are audited.",
							 "On by default: the audit triggers fire ALWAYS. A superuser may turn it off for a bulk load; restoring a dump turns it off in the restoring session.",
							 &audit_replica_writes, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	es_audit_stamp = audit_stamp;
}

/* ---------------------------------------------------------------------
 * The trigger
 * --------------------------------------------------------------------- */

/*
 * One audit_log row about a table rather than a row of it: a TRUNCATE, or
 * (src/audit/audit_admin.c and the utility hook below) auditing switched on or
 * off, a partition attached, detached or dropped.  data becomes new_data;
 * who and when are the transaction's facts, as for every row.
 */
void
audit_table_event(Oid relid, const char *operation, const char *data)
{
	Datum		vals[AL_NCOLS];
	bool		nulls[AL_NCOLS];

	audit_register_callbacks();
	audit_refresh_facts();
	for (int c = 0; c < AL_NCOLS; c++)
		nulls[c] = true;
	vals[AL_SCHEMA] = CStringGetTextDatum(get_namespace_name(get_rel_namespace(relid)));
	nulls[AL_SCHEMA] = false;
	vals[AL_TABLE] = CStringGetTextDatum(get_rel_name(relid));
	nulls[AL_TABLE] = false;
	vals[AL_OPERATION] = CStringGetTextDatum(operation);
	nulls[AL_OPERATION] = false;
	if (data != NULL)
	{
		vals[AL_NEW_DATA] = DirectFunctionCall1(jsonb_in, CStringGetDatum(data));
		nulls[AL_NEW_DATA] = false;
	}
	audit_insert(vals, nulls);
}

/* {"partition": "schema.name"} */
static char *
audit_partition_json(Oid partition)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"partition\": ");
	es_json_quote(&buf, quote_qualified_identifier(get_namespace_name(get_rel_namespace(partition)),
												   get_rel_name(partition)));
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * Whether this session's changes go unaudited, in session_replication_role
 * replica only: a superuser's bulk load or a restore (elfsofa.audit_replica_writes
 * off), or a logical-replication worker applying changes the publisher has
 * audited already.
 */
bool
audit_quiet(void)
{
	return SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA &&
		(!audit_replica_writes || MyLogicalRepWorker != NULL);
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

/*
 * Whether an UPDATE is of elfsofa.stock_levels, to a row of the product
 * inventory is changing with a ledger row that stands in for the audit row
 * (es_audit_stock_in_ledger).
 */
static bool
audit_in_ledger(TriggerData *td)
{
	Relation	rel = td->tg_relation;
	AttrNumber	att;
	Datum		d;
	bool		isnull;

	if (strcmp(RelationGetRelationName(rel), "stock_levels") != 0 ||
		RelationGetNamespace(rel) != get_namespace_oid("elfsofa", true))
		return false;
	att = get_attnum(RelationGetRelid(rel), "product_id");
	if (att == InvalidAttrNumber)
		return false;
	d = slot_getattr(td->tg_newslot, att, &isnull);
	return !isnull && DatumGetInt64(d) == es_audit_stock_in_ledger;
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

	/* the triggers fire ALWAYS, so writes in replica mode are audited too */
	if (audit_quiet())
		return PointerGetDatum(NULL);
	audit_register_callbacks();

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		audit_table_event(RelationGetRelid(td->tg_relation), "TRUNCATE", NULL);
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
	/* a reservation whose stock_ledger row stands in for this row (base/request.h) */
	if (op == OP_UPDATE && es_audit_stock_in_ledger != 0 && audit_in_ledger(td))
		return PointerGetDatum(NULL);
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

/*
 * Whether relid carries an elfsofa audit trigger named tgname (enabled, if
 * asked).  Read from pg_trigger without locking relid: the statement about to
 * run takes its own, stronger lock, and taking a weaker one first would invite
 * lock-upgrade deadlocks.
 */
static bool
audit_has_trigger(Oid relid, const char *tgname, bool enabled_only)
{
	Relation	tgrel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	ScanKeyInit(&key[0], Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	ScanKeyInit(&key[1], Anum_pg_trigger_tgname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum(tgname));
	scan = systable_beginscan(tgrel, TriggerRelidNameIndexId, true, NULL, 2, key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
		found = !enabled_only || ((Form_pg_trigger) GETSTRUCT(tup))->tgenabled != TRIGGER_DISABLED;
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);
	return found;
}

/*
 * The table enable_audit was called on that covers relid (relid itself or a
 * partitioned ancestor: only there is the TRUNCATE trigger, statement triggers
 * are not cloned), or InvalidOid.
 */
static Oid
audit_covering_table(Oid relid, bool enabled_only)
{
	ListCell   *lc;

	if (!OidIsValid(relid))
		return InvalidOid;
	if (audit_has_trigger(relid, AUDIT_TRUNCATE_TRIGGER, enabled_only))
		return relid;
	if (!get_rel_relispartition(relid))
		return InvalidOid;
	foreach(lc, get_partition_ancestors(relid))
	{
		if (audit_has_trigger(lfirst_oid(lc), AUDIT_TRUNCATE_TRIGGER, enabled_only))
			return lfirst_oid(lc);
	}
	return InvalidOid;
}

/* A table event to write once the utility statement has run. */
typedef struct AuditDdlEvent
{
	Oid			audited;
	const char *operation;		/* NULL: audit child, a new inheritance child of audited */
	char	   *data;			/* new_data, or NULL */
	RangeVar   *child;
} AuditDdlEvent;

static List *
audit_add_event(List *events, Oid audited, const char *operation, char *data)
{
	AuditDdlEvent *ev = palloc(sizeof(AuditDdlEvent));

	ev->audited = audited;
	ev->operation = operation;
	ev->data = data;
	ev->child = NULL;
	return lappend(events, ev);
}

/* A table about to inherit from parent: audited with it when parent is audited. */
static List *
audit_add_child(List *events, RangeVar *child, RangeVar *parent)
{
	Oid			parentid = RangeVarGetRelid(parent, NoLock, true);

	if (!OidIsValid(parentid) || get_rel_relkind(parentid) != RELKIND_RELATION ||
		!audit_has_trigger(parentid, AUDIT_ROW_TRIGGER, false))
		return events;
	events = audit_add_event(events, parentid, NULL, NULL);
	((AuditDdlEvent *) llast(events))->child = copyObject(child);
	return events;
}

/* CREATE TABLE ... INHERITS (an audited table): the new child is audited too. */
static List *
audit_create_table(CreateStmt *stmt)
{
	List	   *events = NIL;
	ListCell   *lc;

	if (stmt->partbound != NULL)
		return NIL;				/* a partition: the cloned triggers cover it */
	foreach(lc, stmt->inhRelations)
		events = audit_add_child(events, stmt->relation, lfirst_node(RangeVar, lc));
	return events;
}

/*
 * Statement triggers are not cloned onto partitions either: a TRUNCATE aimed
 * at one partition of an audited partitioned table fires nothing, so it is
 * recorded here, naming the partition.
 */
static List *
audit_truncated_partitions(TruncateStmt *stmt)
{
	List	   *events = NIL;
	ListCell   *lc;

	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = lfirst_node(RangeVar, lc);
		Oid			relid = RangeVarGetRelid(rv, NoLock, true);
		Oid			audited;

		if (!OidIsValid(relid) || !get_rel_relispartition(relid))
			continue;
		audited = audit_covering_table(get_partition_parent(relid, true), true);
		if (OidIsValid(audited))
			events = audit_add_event(events, audited, "TRUNCATE", audit_partition_json(relid));
	}
	return events;
}

/* {"trigger": name, "fires": always|origin|replica|never} */
static char *
audit_trigger_json(const char *tgname, const char *fires)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"trigger\": ");
	es_json_quote(&buf, tgname);
	appendStringInfo(&buf, ", \"fires\": \"%s\"}", fires);
	return buf.data;
}

/*
 * ALTER TABLE of an audited table: a partition attached or detached (the
 * owner could otherwise take history out, edit it and put it back), and its
 * audit trigger switched off, on, or to fire only in one replication role.
 */
static List *
audit_alter_table(AlterTableStmt *stmt)
{
	List	   *events = NIL;
	Oid			relid;
	ListCell   *lc;

	if (stmt->objtype != OBJECT_TABLE)
		return NIL;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid))
		return NIL;
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
		const char *fires = NULL;
		bool		all = false;

		switch (cmd->subtype)
		{
			case AT_AttachPartition:
			case AT_DetachPartition:
			case AT_DetachPartitionFinalize:
				{
					PartitionCmd *pc = (PartitionCmd *) cmd->def;
					Oid			part = RangeVarGetRelid(pc->name, NoLock, true);
					Oid			audited = audit_covering_table(relid, false);

					if (OidIsValid(part) && OidIsValid(audited))
						events = audit_add_event(events, audited,
												 cmd->subtype == AT_AttachPartition ? "ATTACH PARTITION" : "DETACH PARTITION",
												 audit_partition_json(part));
				}
				continue;
			case AT_AddInherit:
				events = audit_add_child(events, stmt->relation, (RangeVar *) cmd->def);
				continue;
			case AT_EnableTrig:
				fires = "origin";
				break;
			case AT_EnableAlwaysTrig:
				fires = "always";
				break;
			case AT_EnableReplicaTrig:
				fires = "replica";
				break;
			case AT_DisableTrig:
				fires = "never";
				break;
			case AT_EnableTrigAll:
			case AT_EnableTrigUser:
				fires = "origin";
				all = true;
				break;
			case AT_DisableTrigAll:
			case AT_DisableTrigUser:
				fires = "never";
				all = true;
				break;
			default:
				continue;
		}
		for (int t = 0; t < 2; t++)
		{
			const char *tgname = t == 0 ? AUDIT_ROW_TRIGGER : AUDIT_TRUNCATE_TRIGGER;
			Oid			audited;

			if (!all && strcmp(cmd->name, tgname) != 0)
				continue;
			if (!audit_has_trigger(relid, tgname, false))
				continue;
			audited = audit_covering_table(relid, false);
			events = audit_add_event(events, OidIsValid(audited) ? audited : relid,
									 strcmp(fires, "never") == 0 ? "DISABLE AUDIT" : "ENABLE AUDIT",
									 audit_trigger_json(tgname, fires));
		}
	}
	return events;
}

/* DROP TRIGGER of an audit trigger, and DROP TABLE of a partition of an audited table. */
static List *
audit_drop(DropStmt *stmt)
{
	List	   *events = NIL;
	ListCell   *lc;

	if (stmt->removeType != OBJECT_TRIGGER && stmt->removeType != OBJECT_TABLE)
		return NIL;
	foreach(lc, stmt->objects)
	{
		List	   *names = (List *) lfirst(lc);
		Oid			relid;

		if (stmt->removeType == OBJECT_TABLE)
		{
			relid = RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
			if (OidIsValid(relid) && get_rel_relispartition(relid))
			{
				Oid			audited = audit_covering_table(get_partition_parent(relid, true), false);

				if (OidIsValid(audited))
					events = audit_add_event(events, audited, "DROP PARTITION", audit_partition_json(relid));
			}
		}
		else if (list_length(names) >= 2)
		{
			char	   *tgname = strVal(llast(names));

			if (strcmp(tgname, AUDIT_ROW_TRIGGER) != 0 && strcmp(tgname, AUDIT_TRUNCATE_TRIGGER) != 0)
				continue;
			relid = RangeVarGetRelid(makeRangeVarFromNameList(list_truncate(list_copy(names), list_length(names) - 1)),
									 NoLock, true);
			if (OidIsValid(relid) && audit_has_trigger(relid, tgname, false))
				events = audit_add_event(events, relid, "DISABLE AUDIT",
										 audit_trigger_json(tgname, "dropped"));
		}
	}
	return events;
}

/*
 * es_audit_utility_before runs before every utility statement (src/hooks.c):
 * it refuses a TRUNCATE of audit_log or of one of its partitions, and returns
 * the table events the statement makes (TRUNCATE of a partition of an audited
 * table; ATTACH, DETACH or DROP of one; an audit trigger switched or dropped)
 * for es_audit_utility_after to write once the statement has succeeded, and
 * the new inheritance children of audited tables it is to audit then.
 * enable_audit/disable_audit record their own, and elfsofa's install and
 * upgrade scripts and quiet sessions (audit_quiet) record none.
 */
List *
es_audit_utility_before(PlannedStmt *pstmt)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (IsA(stmt, TruncateStmt))
		audit_check_truncate((TruncateStmt *) stmt);
	if (creating_extension || audit_admin_running() || audit_quiet())
		return NIL;
	if (IsA(stmt, TruncateStmt))
		return audit_truncated_partitions((TruncateStmt *) stmt);
	if (IsA(stmt, AlterTableStmt))
		return audit_alter_table((AlterTableStmt *) stmt);
	if (IsA(stmt, CreateStmt))
		return audit_create_table((CreateStmt *) stmt);
	if (IsA(stmt, DropStmt))
		return audit_drop((DropStmt *) stmt);
	return NIL;
}

/* es_audit_utility_after writes the events es_audit_utility_before listed. */
void
es_audit_utility_after(List *events)
{
	ListCell   *lc;

	foreach(lc, events)
	{
		AuditDdlEvent *ev = lfirst(lc);

		if (ev->child != NULL)
		{
			Oid			child = RangeVarGetRelid(ev->child, NoLock, false);

			/* once per child, however many audited parents it has */
			if (list_member_oid(find_inheritance_children(ev->audited, NoLock), child) &&
				!audit_has_trigger(child, AUDIT_ROW_TRIGGER, false))
				audit_enable_inherited(child, ev->audited);
		}
		else
			audit_table_event(ev->audited, ev->operation, ev->data);
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
