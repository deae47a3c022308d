/*
 * orders.h — helpers shared by orders.c and lifecycle.c only: small jsonb
 * builders (JsonbParseState, never text concatenation), strict readers for
 * jsonb input fields, and the payment_info parser both entry points use.
 */
#ifndef ELFSOFA_ORDERS_H
#define ELFSOFA_ORDERS_H

#include "elfsofa.h"

#include "utils/numeric.h"

/* Longest order process_order accepts (lines before merging). */
#define ES_MAX_ORDER_ITEMS	100

/* jsonb building: keys and values pushed onto a JsonbParseState. */
extern void es_jb_key(JsonbParseState **st, const char *key);
extern void es_jb_str(JsonbParseState **st, const char *key, const char *val);
extern void es_jb_int(JsonbParseState **st, const char *key, int64 val);
extern void es_jb_num(JsonbParseState **st, const char *key, Numeric val);
extern void es_jb_bool(JsonbParseState **st, const char *key, bool val);
extern Jsonb *es_jb_finish(JsonbParseState **st);

/* jsonb reading: a key of an object container, or NULL when absent. */
extern JsonbValue *es_jget(JsonbContainer *obj, const char *key);
/* A human name for a json value's type ("a string", "null", ...). */
extern const char *es_jtype(JsonbValue *v);
/* Raises 22023: errmsg msg, DETAIL "<path> <why>." */
extern void es_bad_input(const char *path, const char *msg, const char *why) pg_attribute_noreturn();
/* Optional string field: NULL when absent or json null; 22023 when wrong-typed, empty or too long. */
extern char *es_jtext(JsonbContainer *obj, const char *key, const char *path, int maxlen, bool required);

/* A validated payment_info object. */
typedef struct EsPayment
{
	char	   *method;			/* promptpay | card | bank_transfer | cod */
	Numeric		amount;			/* NULL when not given: the order total */
	char	   *provider;		/* may be NULL */
	char	   *provider_ref;	/* may be NULL */
	char	   *status;			/* pending | authorized | captured | failed | refunded */
} EsPayment;

/*
 * Parses payment_info; statuses outside allowed_statuses (a NULL-terminated
 * list) are 22023.  Returns false when the value is SQL or json null.
 */
extern bool es_parse_payment(Jsonb *jb, EsPayment *out, const char *const *allowed_statuses);

/* orders.payment_status implied by a payment's status ("unpaid" when it implies nothing). */
extern const char *es_payment_order_status(const char *payment_status);

#endif							/* ELFSOFA_ORDERS_H */
