/*
 * row_guard.c — customer_row_guard(): a trigger that keeps a signed-in
 * customer's writes to rows of their own (a row's customer_id, or its
 * parent's), whatever RLS policies the table has.
 */
#include "customers/customers.h"

#include "access/xact.h"
#include "access/htup_details.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(elfsofa_customer_row_guard);

static EsPlan parent_customer_plan_cache[4];

/* The customer owning a child row: SELECT customer_id FROM parent WHERE id = $1. */
static bool
parent_customer(const char *parent, Datum key, Oid keytype, pg_uuid_t *out)
{
	EsPlan	   *p = NULL;
	char	   *sql = psprintf("SELECT customer_id FROM elfsofa.%s WHERE id = $1",
							   quote_identifier(parent));
	bool		found = false;

	for (int i = 0; i < lengthof(parent_customer_plan_cache); i++)
	{
		EsPlan	   *c = &parent_customer_plan_cache[i];

		if (c->sql != NULL && strcmp(c->sql, sql) == 0 && c->argtypes[0] == keytype)
		{
			p = c;
			break;
		}
		if (c->sql == NULL)
		{
			c->sql = MemoryContextStrdup(TopMemoryContext, sql);
			c->nargs = 1;
			c->argtypes[0] = keytype;
			p = c;
			break;
		}
	}
	if (p == NULL)
		elog(ERROR, "elfsofa: too many customer guard parents");

	SPI_connect();
	/* not read-only: see a parent row inserted earlier in the same statement (a CTE) */
	es_exec(p, &key, NULL, false, 1);
	if (SPI_processed > 0)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			memcpy(out, DatumGetUUIDP(d), sizeof(pg_uuid_t));
			found = true;
		}
	}
	SPI_finish();
	return found;
}

/* Raises 42501 unless the row's customer is the caller's. */
static void
check_row(TriggerData *td, HeapTuple tuple, const pg_uuid_t *caller)
{
	Trigger    *tg = td->tg_trigger;
	TupleDesc	desc = td->tg_relation->rd_att;
	int			attno = SPI_fnumber(desc, tg->tgargs[0]);
	bool		isnull;
	Datum		v;
	pg_uuid_t	owner;
	bool		known;

	if (attno <= 0)
		elog(ERROR, "elfsofa: customer guard column \"%s\" not found", tg->tgargs[0]);
	v = heap_getattr(tuple, attno, desc, &isnull);
	if (isnull)
		known = false;
	else if (tg->tgnargs > 1)
		known = parent_customer(tg->tgargs[1], v, SPI_gettypeid(desc, attno), &owner);
	else
	{
		memcpy(&owner, DatumGetUUIDP(v), sizeof(pg_uuid_t));
		known = true;
	}
	if (caller == NULL || !known || memcmp(&owner, caller, sizeof(pg_uuid_t)) != 0)
	{
		Oid			relid = RelationGetRelid(td->tg_relation);
		List	   *ancestors = td->tg_relation->rd_rel->relispartition ? get_partition_ancestors(relid) : NIL;

		/* name the partitioned table, not this month's partition */
		if (ancestors != NIL)
			relid = llast_oid(ancestors);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("row belongs to another customer"),
				 errdetail(caller == NULL
						   ? "The caller of this %s on table \"%s\" has no customer (no JWT sub linked to one)."
						   : "The caller of this %s on table \"%s\" may only change the rows of their own customer.",
						   TRIGGER_FIRED_BY_INSERT(td->tg_event) ? "INSERT" :
						   TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? "UPDATE" : "DELETE",
						   get_rel_name(relid))));
	}
}

/*
 * elfsofa.customer_row_guard(column [, parent_table]): BEFORE ROW trigger
 * that keeps non-privileged callers (anon, authenticated — also inside
 * SECURITY DEFINER RPCs) to rows of their own customer, whichever function
 * writes.  The customer is the row's column, or the customer_id of the parent
 * row it references.  Privileged database roles pass untouched.
 */
Datum
elfsofa_customer_row_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	pg_uuid_t	caller;
	bool		have_caller;
	HeapTuple	ret;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || td->tg_trigger->tgnargs < 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("customer_row_guard must be a BEFORE ROW trigger with a column argument")));

	ret = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	if (es_role_is_privileged())
		return PointerGetDatum(ret);

	have_caller = es_current_customer_id(&caller);
	if (!TRIGGER_FIRED_BY_INSERT(td->tg_event))
		check_row(td, td->tg_trigtuple, have_caller ? &caller : NULL);
	if (!TRIGGER_FIRED_BY_DELETE(td->tg_event))
		check_row(td, ret, have_caller ? &caller : NULL);
	return PointerGetDatum(ret);
}
