/*
 * caller.c — which customer a request acts for: the customer id it names,
 * checked against the JWT sub, or the customer whose auth_user_id is the sub.
 */
#include "elfsofa.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

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
