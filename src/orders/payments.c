/*
 * payments.c — payment_info as process_order and record_payment take it, and
 * which orders.payment_status a payment's status implies.
 */
#include "orders/orders.h"

#include "utils/builtins.h"
#include "utils/numeric.h"

static const char *const payment_methods[] = {"promptpay", "card", "bank_transfer", "cod", NULL};

static bool
in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

bool
es_parse_payment(Jsonb *jb, EsPayment *out, const char *const *allowed_statuses)
{
	JsonbContainer *root;
	JsonbValue *amount;
	char	   *currency;

	if (es_jsonb_is_null(jb))
		return false;
	root = es_jsonb_root_object(jb, "payment_info");

	out->method = es_jtext(root, "method", "payment_info.method", 32, true);
	if (!in_list(out->method, payment_methods))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown payment method"),
				 errdetail("payment_info.method was \"%s\".", out->method),
				 errhint("Use promptpay, card, bank_transfer or cod.")));

	/* optional: when absent the payment is for the computed total */
	out->amount = NULL;
	amount = es_jget(root, "amount");
	if (amount != NULL && amount->type != jbvNull)
	{
		if (amount->type != jbvNumeric)
			es_bad_input("payment_info.amount", "field has the wrong type",
						 psprintf("was %s; it must be a number", es_jtype(amount)));
		if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(amount->val.numeric),
											  NumericGetDatum(int64_to_numeric(0)))) < 0)
			es_bad_input("payment_info.amount", "invalid payment amount",
						 psprintf("was %s; it must not be negative", numeric_normalize(amount->val.numeric)));
		out->amount = amount->val.numeric;
	}

	currency = es_jtext(root, "currency", "payment_info.currency", 3, false);
	if (currency && strcmp(currency, "THB") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unsupported currency"),
				 errdetail("payment_info.currency was \"%s\".", currency),
				 errhint("The shop sells in THB only.")));

	out->provider = es_jtext(root, "provider", "payment_info.provider", 50, false);
	out->provider_ref = es_jtext(root, "provider_ref", "payment_info.provider_ref", 200, false);
	if (out->provider_ref && !out->provider)
		es_bad_input("payment_info.provider", "payment provider is required with provider_ref", "was missing");

	out->status = es_jtext(root, "status", "payment_info.status", 32, false);
	if (out->status == NULL)
		out->status = "pending";
	if (!in_list(out->status, allowed_statuses))
	{
		StringInfoData allowed;

		initStringInfo(&allowed);
		for (const char *const *s = allowed_statuses; *s; s++)
			appendStringInfo(&allowed, "%s%s", allowed.len ? ", " : "", *s);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid payment status"),
				 errdetail("payment_info.status was \"%s\".", out->status),
				 errhint("Use one of: %s.", allowed.data)));
	}
	return true;
}

/*
 * es_payment_order_status gives orders.payment_status after a payment of an
 * order whose payment status is current reaches status, or NULL when it
 * stays as it is: captured is paid, refunded is refunded, authorized makes an
 * unpaid order authorized, failed makes an authorized one unpaid again.  A new
 * order starts from "unpaid"; record_payment moves it along the same rule.
 */
const char *
es_payment_order_status(const char *current, const char *status)
{
	if (strcmp(status, "captured") == 0)
		return "paid";
	if (strcmp(status, "refunded") == 0)
		return "refunded";
	if (strcmp(status, "authorized") == 0 && strcmp(current, "unpaid") == 0)
		return "authorized";
	if (strcmp(status, "failed") == 0 && strcmp(current, "authorized") == 0)
		return "unpaid";
	return NULL;
}
