/*
 * security.c — who is calling: the customer behind the Supabase JWT.
 *
 * RLS policies call elfsofa.current_customer_id(), C code
 * es_current_customer_id().  Only the JWT "sub" claim counts, so a forged
 * "role" claim inside the JWT never widens access; privilege comes from the
 * database role alone (es_role_is_privileged() in orders.c).
 */
#include "elfsofa.h"

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

PG_FUNCTION_INFO_V1(elfsofa_current_customer_id);
PG_FUNCTION_INFO_V1(elfsofa_register_customer);
PG_FUNCTION_INFO_V1(elfsofa_customer_row_guard);

static EsPlan customer_by_auth_plan = {
	"SELECT id FROM elfsofa.customers WHERE auth_user_id = $1",
	1, {UUIDOID}
};

static EsPlan email_owner_plan = {
	"SELECT auth_user_id FROM elfsofa.customers "
	"WHERE lower(email) = lower($1) AND auth_user_id IS NOT NULL AND auth_user_id <> $2",
	2, {TEXTOID, UUIDOID}
};

static EsPlan register_plan = {
	"SELECT elfsofa.upsert_customer($1, $2, $3, $4)",
	4, {TEXTOID, TEXTOID, TEXTOID, UUIDOID}
};

/*
 * One-entry cache: policies may call current_customer_id() once per row, so
 * remember the answer for the same claims within the same command.
 */
static struct
{
	bool		valid;
	LocalTransactionId lxid;
	CommandId	cid;
	char	   *claims;			/* in TopMemoryContext */
	bool		found;
	pg_uuid_t	id;
} cache;

bool
es_jwt_sub_uuid(pg_uuid_t *out)
{
	Jsonb	   *claims = es_jwt_claims();
	char	   *sub = es_jsonb_get_text(claims, "sub");

	return sub != NULL && es_parse_uuid(sub, out);
}

bool
es_current_customer_id(pg_uuid_t *out)
{
	const char *raw = GetConfigOption("request.jwt.claims", true, false);
	LocalTransactionId lxid = ES_MY_LXID;
	CommandId	cid = GetCurrentCommandId(false);
	pg_uuid_t	sub;
	bool		found = false;

	if (raw == NULL || raw[0] == '\0')
		return false;
	if (cache.valid && cache.lxid == lxid && cache.cid == cid && strcmp(cache.claims, raw) == 0)
	{
		if (cache.found)
			*out = cache.id;
		return cache.found;
	}

	if (es_jwt_sub_uuid(&sub))
	{
		Datum		arg = UUIDPGetDatum(&sub);

		SPI_connect();
		es_exec(&customer_by_auth_plan, &arg, NULL, true, 1);
		if (SPI_processed > 0)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			memcpy(out, DatumGetUUIDP(d), sizeof(pg_uuid_t));
			found = true;
		}
		SPI_finish();
	}

	cache.valid = false;
	if (cache.claims)
		pfree(cache.claims);
	cache.claims = MemoryContextStrdup(TopMemoryContext, raw);
	cache.lxid = lxid;
	cache.cid = cid;
	cache.found = found;
	if (found)
		cache.id = *out;
	cache.valid = true;
	return found;
}

/* elfsofa.current_customer_id(): the caller's customer id for RLS, or NULL. */
Datum
elfsofa_current_customer_id(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

	if (!es_current_customer_id(id))
		PG_RETURN_NULL();
	PG_RETURN_UUID_P(id);
}

/*
 * elfsofa.register_customer(full_name, phone): a signed-in user creates or
 * updates their own customer row; e-mail and auth id come from the JWT only.
 */
Datum
elfsofa_register_customer(PG_FUNCTION_ARGS)
{
	Jsonb	   *claims = es_jwt_claims();
	char	   *email = es_jsonb_get_text(claims, "email");
	pg_uuid_t  *sub = palloc(sizeof(pg_uuid_t));
	Datum		values[4];
	char		nulls[4] = {' ', 'n', 'n', ' '};
	bool		isnull;
	Datum		id;

	if (!es_jwt_sub_uuid(sub))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a signed-in user can register as a customer"),
				 errdetail("The request carries no JWT \"sub\" claim holding a user id."),
				 errhint("Call this function with the user's access token, not the anon key.")));
	if (email == NULL || email[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the access token has no e-mail address"),
				 errdetail("The JWT has no \"email\" claim."),
				 errhint("Sign the user in with an e-mail identity first.")));

	values[0] = CStringGetTextDatum(email);
	if (!PG_ARGISNULL(0))
	{
		values[1] = PG_GETARG_DATUM(0);
		nulls[1] = ' ';
	}
	if (!PG_ARGISNULL(1))
	{
		values[2] = PG_GETARG_DATUM(1);
		nulls[2] = ' ';
	}
	values[3] = UUIDPGetDatum(sub);

	SPI_connect();
	es_exec(&email_owner_plan, (Datum[]) {values[0], values[3]}, NULL, true, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ES_ERRCODE_CONFLICT),
				 errmsg("this e-mail address belongs to another user"),
				 errdetail("Customer \"%s\" is linked to a different auth user.", email)));
	es_exec(&register_plan, values, nulls, false, 1);
	id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	id = PointerGetDatum(SPI_datumTransfer(id, false, UUID_LEN));
	SPI_finish();
	PG_RETURN_DATUM(id);
}

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
