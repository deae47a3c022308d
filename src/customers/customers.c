/*
 * customers.c — upsert_customer(): create or update a customer by e-mail,
 * optionally linking the Supabase auth user.
 */
#include "customers/customers.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(elfsofa_register_customer);
PG_FUNCTION_INFO_V1(elfsofa_upsert_customer);

static EsPlan upsert_plan = {
	"INSERT INTO elfsofa.customers AS c (email, full_name, phone, auth_user_id) "
	"VALUES (lower($1), $2, $3, $4) "
	"ON CONFLICT (lower(email)) DO UPDATE SET "
	"  full_name = COALESCE(EXCLUDED.full_name, c.full_name), "
	"  phone = COALESCE(EXCLUDED.phone, c.phone), "
	"  auth_user_id = COALESCE(EXCLUDED.auth_user_id, c.auth_user_id), "
	"  updated_at = now() "
	"RETURNING c.id, c.auth_user_id",
	4, {TEXTOID, TEXTOID, TEXTOID, UUIDOID}
};

static EsPlan linked_elsewhere_plan = {
	"SELECT email FROM elfsofa.customers WHERE auth_user_id = $2 AND email <> lower($1)",
	2, {TEXTOID, UUIDOID}
};

static void
bad_arg(const char *arg, const char *msg, const char *value, const char *hint)
{
	es_invalid_arg(msg, psprintf("Argument \"%s\" was \"%s\".", arg, value), hint);
}

/* Same rule as the CHECK constraint, so bad input is 22023 and not 23514. */
static void
check_email(const char *email)
{
	const char *at = strchr(email, '@');

	if (strlen(email) > 254 || at == NULL || at == email || at[1] == '\0' ||
		strchr(at + 1, '@') != NULL || strpbrk(email, " \t\r\n") != NULL)
		bad_arg("email", "invalid email address", email, "Use one address of the form name@example.com.");
}

static void
check_phone(const char *phone)
{
	size_t		len = strlen(phone);

	if (len < 6 || len > 20)
		bad_arg("phone", "invalid phone number", phone, "Use 6 to 20 digits, spaces or dashes, optionally starting with +.");
	for (size_t i = 0; i < len; i++)
	{
		char		c = phone[i];

		if (!((c >= '0' && c <= '9') || c == ' ' || c == '-' || (c == '+' && i == 0)))
			bad_arg("phone", "invalid phone number", phone, "Use 6 to 20 digits, spaces or dashes, optionally starting with +.");
	}
}

Datum
elfsofa_upsert_customer(PG_FUNCTION_ARGS)
{
	char	   *email = es_require_text(fcinfo, 0, "email", 254);
	Datum		values[4];
	char		nulls[4] = {' ', 'n', 'n', 'n'};
	bool		isnull;
	Datum		id;

	check_email(email);
	values[0] = CStringGetTextDatum(email);
	if (!PG_ARGISNULL(1))
	{
		char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(1));

		if (strlen(name) > 200)
			bad_arg("full_name", "full name is too long", "(more than 200 bytes)", NULL);
		values[1] = CStringGetTextDatum(name);
		nulls[1] = ' ';
	}
	if (!PG_ARGISNULL(2))
	{
		char	   *phone = text_to_cstring(PG_GETARG_TEXT_PP(2));

		check_phone(phone);
		values[2] = CStringGetTextDatum(phone);
		nulls[2] = ' ';
	}
	if (!PG_ARGISNULL(3))
	{
		values[3] = PG_GETARG_DATUM(3);
		nulls[3] = ' ';
	}

	SPI_connect();
	if (nulls[3] == ' ')
	{
		Datum		lv[2] = {values[0], values[3]};

		es_exec(&linked_elsewhere_plan, lv, NULL, true, 1);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ES_ERRCODE_CONFLICT),
					 errmsg("auth user is already linked to another customer"),
					 errdetail("Argument \"auth_user_id\" %s belongs to customer %s.",
							   DatumGetCString(DirectFunctionCall1(uuid_out, values[3])),
							   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1))));
	}
	es_exec(&upsert_plan, values, nulls, false, 0);
	id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	/* copy the uuid out of SPI memory before SPI_finish frees it */
	id = PointerGetDatum(SPI_datumTransfer(id, false, UUID_LEN));
	SPI_finish();

	PG_RETURN_DATUM(id);
}

/* The customer with this e-mail, if any: who owns it, and what a guest already holds. */
static EsPlan email_row_plan = {
	"SELECT auth_user_id IS NOT NULL AND auth_user_id <> $2 AS other_user, auth_user_id IS NULL AS guest, "
	"       full_name IS NOT NULL AS has_name, phone IS NOT NULL AS has_phone "
	"FROM elfsofa.customers WHERE lower(email) = lower($1)",
	2, {TEXTOID, UUIDOID}
};

/*
 * email_verified says whether the JWT vouches for its e-mail address: Supabase
 * Auth sets user_metadata.email_verified (and some providers a top-level
 * email_verified) to true once the user proved the address.
 */
static bool
email_verified(Jsonb *claims)
{
	JsonbValue *v;

	if (claims == NULL || !JB_ROOT_IS_OBJECT(claims) || JB_ROOT_IS_SCALAR(claims))
		return false;
	v = es_jget(&claims->root, "email_verified");
	if (v && v->type == jbvBool && v->val.boolean)
		return true;
	v = es_jget(&claims->root, "user_metadata");
	if (v && v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))
	{
		JsonbValue *m = es_jget(v->val.binary.data, "email_verified");

		return m && m->type == jbvBool && m->val.boolean;
	}
	return false;
}

static EsPlan register_plan = {
	"SELECT elfsofa.upsert_customer($1, $2, $3, $4)",
	4, {TEXTOID, TEXTOID, TEXTOID, UUIDOID}
};

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
	es_exec(&email_row_plan, (Datum[]) {values[0], values[3]}, NULL, true, 1);
	if (SPI_processed > 0)
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		if (DatumGetBool(SPI_getbinval(row, desc, 1, &isnull)))
			ereport(ERROR,
					(errcode(ES_ERRCODE_CONFLICT),
					 errmsg("this e-mail address belongs to another user"),
					 errdetail("Customer \"%s\" is linked to a different auth user.", email)));

		/*
		 * A guest with this e-mail (an order placed without an account)
		 * becomes this user's only when the token vouches for the address:
		 * anyone can sign up with someone else's e-mail.  Linking keeps the
		 * guest's name and phone; only what the guest lacks is filled in.
		 */
		if (DatumGetBool(SPI_getbinval(row, desc, 2, &isnull)))
		{
			if (!email_verified(claims))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("the e-mail address of this account is not verified"),
						 errdetail("Customer \"%s\" exists without an account; it is linked only to a user whose token has email_verified true.", email),
						 errhint("Confirm the e-mail address (Supabase Auth sets user_metadata.email_verified), then register again.")));
			if (DatumGetBool(SPI_getbinval(row, desc, 3, &isnull)))
				nulls[1] = 'n';
			if (DatumGetBool(SPI_getbinval(row, desc, 4, &isnull)))
				nulls[2] = 'n';
		}
	}
	es_exec(&register_plan, values, nulls, false, 1);
	id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	id = PointerGetDatum(SPI_datumTransfer(id, false, UUID_LEN));
	SPI_finish();
	PG_RETURN_DATUM(id);
}
