/*
 * caller.c — which customer a request acts for: the customer id it names,
 * checked against the JWT sub, or the customer whose auth_user_id is the sub.
 *
 * RLS policies call elfsofa.current_customer_id(), C code
 * es_current_customer_id().  Only the JWT "sub" claim counts, so a forged
 * "role" claim inside the JWT never widens access; privilege comes from the
 * database role alone (es_role_is_privileged(), base/request.c).
 */
#include "customers/customers.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(elfsofa_current_customer_id);

static EsKeyLookup customer_by_id = {
	"customers", "id", 1, {"auth_user_id"}
};

static EsPlan customer_by_auth_plan = {
	"SELECT id FROM elfsofa.customers WHERE auth_user_id = $1",
	1, {UUIDOID}, .generic = true
};

Datum
es_caller_customer(const char *given, const char *argpath)
{
	char	   *sub = es_jsonb_get_text(es_jwt_claims(), "sub");
	pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));
	Datum		arg;

	if (sub != NULL && sub[0] == '\0')
		sub = NULL;

	if (given != NULL)
	{
		char	   *owner;
		Datum		owner_d;
		bool		owner_null;

		if (!es_parse_uuid(given, id))
			es_bad_input(argpath, "invalid customer id", psprintf("was \"%s\", which is not a uuid", given));
		/* without a usable sub a non-privileged caller is nobody: it names no customer */
		if (sub == NULL && !es_role_is_privileged())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only a signed-in user or a privileged role can act for a customer"),
					 errdetail("%s \"%s\" was given, but the request carries no usable JWT \"sub\" claim.", argpath, given),
					 errhint("Call with the user's access token, or from a privileged role (service_role).")));
		arg = UUIDPGetDatum(id);
		if (!es_key_lookup(&customer_by_id, arg, &owner_d, &owner_null))
			ereport(ERROR,
					(errcode(ES_ERRCODE_NOT_FOUND),
					 errmsg("unknown customer"),
					 errdetail("%s \"%s\" matches no customer.", argpath, given)));
		owner = owner_null ? NULL : DatumGetCString(DirectFunctionCall1(uuid_out, owner_d));
		if (sub != NULL && (owner == NULL || pg_strcasecmp(owner, sub) != 0) && !es_role_is_privileged())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("customer belongs to another user"),
					 errdetail("%s \"%s\" is not linked to the signed-in user \"%s\".", argpath, given, sub),
					 errhint("Omit customer_id to act as the signed-in user's own customer.")));
		return arg;
	}

	if (sub == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("required field is missing"),
				 errdetail("%s was missing and the request carries no JWT sub to find the customer by.", argpath)));
	if (es_parse_uuid(sub, id))
	{
		bool		isnull;

		arg = UUIDPGetDatum(id);
		es_exec(&customer_by_auth_plan, &arg, NULL, true, 1);
		if (SPI_processed > 0)
		{
			memcpy(id, DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)),
				   sizeof(pg_uuid_t));
			return UUIDPGetDatum(id);
		}
	}
	ereport(ERROR,
			(errcode(ES_ERRCODE_NOT_FOUND),
			 errmsg("unknown customer"),
			 errdetail("The signed-in user \"%s\" is not linked to any customer.", sub),
			 errhint("Create the customer with upsert_customer(..., auth_user_id) first.")));
	pg_unreachable();
}

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

/* The customer whose auth_user_id is the JWT sub; false when there is none. */
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
