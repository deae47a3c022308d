/*
 * security.c — who is calling: the customer behind the Supabase JWT and
 * whether the database role (never a JWT claim) is privileged.
 *
 * RLS policies call elfsofa.current_customer_id(); the RPCs in C call
 * es_current_customer_id() and es_caller_is_privileged().  Both look only at
 * the JWT "sub" claim and at the role PostgREST switched to, so a forged
 * "role" claim inside the JWT never widens access.
 */
#include "elfsofa.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(elfsofa_current_customer_id);
PG_FUNCTION_INFO_V1(elfsofa_register_customer);

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

/* Hex uuid with or without the four dashes; anything else is "no uuid", never an error. */
static bool
parse_uuid(const char *s, pg_uuid_t *out)
{
	int			n = 0;
	size_t		len;

	if (s == NULL)
		return false;
	len = strlen(s);
	if (len != 32 && len != 36)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		char		c = s[i];
		int			v;

		if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23))
		{
			if (c != '-')
				return false;
			continue;
		}
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return false;
		if (n % 2 == 0)
			out->data[n / 2] = v << 4;
		else
			out->data[n / 2] |= v;
		n++;
	}
	return n == 32;
}

bool
es_jwt_sub_uuid(pg_uuid_t *out)
{
	Jsonb	   *claims = es_jwt_claims();
	char	   *sub = es_jsonb_get_text(claims, "sub");

	return parse_uuid(sub, out);
}

/* Privilege comes from the database role PostgREST switched to, not from the JWT. */
bool
es_caller_is_privileged(void)
{
	Oid			role = GetOuterUserId();	/* SET ROLE's role, also inside SECURITY DEFINER */

	return superuser_arg(role) || has_bypassrls_privilege(role);
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
