/*
 * orders.h — the orders area: orders, their lines, payments and idempotency
 * keys (owns orders, order_lines, payments, idempotency_keys).
 */
#ifndef ELFSOFA_ORDERS_H
#define ELFSOFA_ORDERS_H

#include "postgres.h"

#include "base/args.h"
#include "base/compat.h"
#include "base/errcodes.h"
#include "base/jsonb.h"
#include "base/keylookup.h"
#include "base/request.h"
#include "base/spi.h"
#include "customers/customers.h"
#include "events/events.h"
#include "inventory/inventory.h"

#include "utils/numeric.h"

/* Defines the orders area's settings; called once from _PG_init. */
extern void es_orders_init(void);

/* The order-number lock in shared memory (src/hooks.c, when preloaded). */
extern void es_orders_shmem_request(void);
extern void es_orders_shmem_startup(void);

/* Longest order process_order accepts (lines before merging). */
#define ES_MAX_ORDER_ITEMS	100

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

/* orders.payment_status after a payment reaches status (NULL: unchanged). */
extern const char *es_payment_order_status(const char *current, const char *status);

/* One SKU of the order after merging duplicates. */
typedef struct OrderItem
{
	char	   *sku;
	int32		qty;
	int			index;			/* first position in items[] (for messages) */
	int32		allocated;		/* units placed through inventory_updates; 0 = automatic */
	int64		product_id;		/* 0 until the catalog lookup */
	Numeric		price;
	int32		threshold;
	bool		active;
	int			buckets;		/* products.stock_buckets (> 1: hot) */
} OrderItem;

/* An order line: units of one SKU from one location (inventory/inventory.h). */
typedef EsStockAlloc Alloc;

typedef struct Order
{
	OrderItem	   *items;
	int			nitems;
	Alloc	   *allocs;
	int			nallocs;
	int			maxallocs;		/* allocated length of allocs */
	char	   *customer_text;	/* as given, or NULL */
	char	   *idem_key;
	Jsonb	   *shipping;
	char	   *note;
	bool		has_payment;
	EsPayment	pay;
} Order;

/* in order_parse.c: validates order_data and inventory_updates into o; no database access. */
extern void es_order_parse(Jsonb *order_data, Jsonb *inv, Order *o);

/* in order_idempotency.c: the replay step and the saved key */
extern Jsonb *es_order_replay(Order *o, Datum customer, char **hash, MemoryContext callcxt);
extern void es_order_save_key(Order *o, Datum customer, const char *hash, int64 order_id, Jsonb *result);

#endif							/* ELFSOFA_ORDERS_H */
