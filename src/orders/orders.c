/*
 * orders.c — process_order(): an order placed in the caller's transaction as
 * a short sequence of steps: parse (order_parse.c), replay
 * (order_idempotency.c), price, reserve (inventory/reserve.c), write and
 * emit.  Also the order id and number, taken together under one short lock.
 */
#include "orders/orders.h"

#include <math.h>

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "common/cryptohash.h"
#include "common/hashfn.h"
#include "common/sha2.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/timestamp.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(elfsofa_process_order);

/* Advisory-lock class for taking an order id and its number's year together ('ELFn'). */
#define ES_ORDER_NUMBER_LOCK_CLASS	0x454C466E

/* elfsofa.order_number_timezone: the zone whose calendar year order numbers carry */
static char *order_number_tz_name = NULL;
static pg_tz *order_number_tz = NULL;

static bool
order_number_tz_check(char **newval, void **extra, GucSource source)
{
	pg_tz	   *tz = pg_tzset(*newval);

	if (tz == NULL || !pg_tz_acceptable(tz))
	{
		GUC_check_errdetail("Time zone \"%s\" is unknown or uses leap seconds.", *newval);
		return false;
	}
	*extra = malloc(sizeof(pg_tz *));
	if (*extra == NULL)
		return false;
	*(pg_tz **) *extra = tz;
	return true;
}

static void
order_number_tz_assign(const char *newval, void *extra)
{
	order_number_tz = *(pg_tz **) extra;
}

/* Settings of the orders area; called once from _PG_init. */
void
es_orders_init(void)
{
	DefineCustomStringVariable("elfsofa.order_number_timezone",
							   "Sets the time zone whose calendar year an order number carries (ELF-<year>-...).",
							   "The same for every session whatever its TimeZone, so that a year turn gives one "
							   "sequence of numbers; the shop's zone, Asia/Bangkok, by default.",
							   &order_number_tz_name,
							   "Asia/Bangkok",
							   PGC_SUSET,
							   0,
							   order_number_tz_check, order_number_tz_assign, NULL);
}

/*
 * The lock that takes an order id and its clock reading together.  With
 * shared_preload_libraries it is an LWLock of ours: cheap, and under a crowd
 * of buyers (64 on 2 cores) no queue in which each waiter must be scheduled
 * before the next can go, as a heavyweight lock's hand-over makes (that
 * queue cost a hot SKU's flash sale about a fifth of its orders).  Without
 * the preload it is a transaction-scoped advisory lock taken and released at
 * once, as before.
 */
static LWLock *order_number_lock = NULL;
static bool order_number_requested = false;

/* Asks for the order-number lock (src/hooks.c, when preloaded). */
void
es_orders_shmem_request(void)
{
	RequestNamedLWLockTranche("elfsofa_order_number", 1);
	order_number_requested = true;
}

/* Finds the order-number lock (src/hooks.c). */
void
es_orders_shmem_startup(void)
{
	if (order_number_requested)
		order_number_lock = &(GetNamedLWLockTranche("elfsofa_order_number"))->lock;
}

/*
 * next_order_id takes the next order id and makes its number.  The id and the
 * clock reading that gives the number's year are taken under one short lock
 * (released at once, not held to commit), so a larger id never carries an
 * earlier year: around a year turn every number before the first new-year one
 * has a smaller id.  The year is the calendar year of that moment in
 * elfsofa.order_number_timezone, not of the transaction's start, which can lie
 * before an order that took its id later.  The sequence's own lock is taken
 * first, and the sequence opened, so nothing waits on a heavyweight lock (an
 * ALTER SEQUENCE) while holding the LWLock, where the buyers queued behind it
 * could not be cancelled.
 */
static int64
next_order_id(char **number)
{
	int64		id;
	TimestampTz now;
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	LOCKTAG		tag;
	Oid			seq = get_relname_relid("orders_id_seq", get_namespace_oid("elfsofa", false));

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, ES_ORDER_NUMBER_LOCK_CLASS, 0, 2);
	if (order_number_lock != NULL)
	{
		/* (opened here too, so that its relcache entry is built before) */
		relation_close(relation_open(seq, RowExclusiveLock), NoLock);
		LWLockAcquire(order_number_lock, LW_EXCLUSIVE);
	}
	else
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	id = nextval_internal(seq, true);
	now = GetCurrentTimestamp();
	if (order_number_lock != NULL)
		LWLockRelease(order_number_lock);
	else
		LockRelease(&tag, ExclusiveLock, false);

	if (timestamp2tm(now, &tz, &tm, &fsec, NULL, order_number_tz) != 0)
		elog(ERROR, "elfsofa: current time out of range");
	*number = psprintf("ELF-%04d-%06lld", tm.tm_year, (long long) id);
	return id;
}

/* ------------------------------------------------------------------------
 * jsonb helpers (declared in orders.h)
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Who is the caller's customer (declared in elfsofa.h)
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * process_order
 * ------------------------------------------------------------------------ */





static EsKeyLookup product_by_sku = {
	"products", "sku", 5, {"id", "price", "low_stock_threshold", "is_active", "stock_buckets"}
};

/* The same in a database still at the 1.0 schema (no hot products). */
static EsKeyLookup product_by_sku_v10 = {
	"products", "sku", 4, {"id", "price", "low_stock_threshold", "is_active"}
};


static EsPlan payment_ref_plan = {
	"SELECT order_id FROM elfsofa.payments WHERE provider = $1 AND provider_ref = $2",
	2, {TEXTOID, TEXTOID}, .generic = true
};


/*
 * Order, lines, ledger and payment in one statement; lines share the order's
 * created_at, so they land in the same partition.  The outbox events follow
 * as direct inserts (es_outbox_write).
 * $2 = {order_number, payment_status, note, idempotency_key},
 * $12 = {method, provider, provider_ref, status}.
 * A ledger row whose audit id ($14, per line) is set stands in for the audit
 * row of its reservation (inventory/reserve.c): it carries the audit facts,
 * $15 = {db_user, actor_role, application_name} and $16 = txid, and the
 * bucket row the reservation went to ($17).
 */
static EsPlan write_plan = {
	"WITH o AS ("
	"  INSERT INTO elfsofa.orders (id, order_number, customer_id, payment_status, payment_method, "
	"                              total, shipping_address, note, idempotency_key) "
	"  VALUES ($1, $2[1], $3, $2[2], $12[1], $4, $5, $2[3], $2[4]) "
	"  RETURNING created_at), "
	"l AS (INSERT INTO elfsofa.order_lines (order_id, line_no, product_id, sku, location, quantity, "
	"                                       unit_price, line_total, created_at) "
	"  SELECT $1, u.n, u.pid, u.sku, u.loc, u.q, u.price, u.price * u.q, o.created_at "
	"  FROM o, unnest($6::bigint[], $7::text[], $8::text[], $9::int[], $10::numeric[]) "
	"          WITH ORDINALITY AS u(pid, sku, loc, q, price, n)), "
	"g AS (INSERT INTO elfsofa.stock_ledger (product_id, location, delta_reserved, reason, order_id, actor, "
	"                                        audit_id, txid, db_user, actor_role, application_name, bucket) "
	"  SELECT u.pid, u.loc, u.q, '" ES_LEDGER_RESERVE "', $1, $11, u.aid, "
	"         CASE WHEN u.aid IS NOT NULL THEN $16 END, CASE WHEN u.aid IS NOT NULL THEN $15[1] END, "
	"         CASE WHEN u.aid IS NOT NULL THEN $15[2] END, CASE WHEN u.aid IS NOT NULL THEN $15[3] END, "
	"         CASE WHEN u.aid IS NOT NULL THEN u.b END "
	"  FROM unnest($6::bigint[], $8::text[], $9::int[], $14::bigint[], $17::smallint[]) AS u(pid, loc, q, aid, b)) "
	"INSERT INTO elfsofa.payments (order_id, order_created_at, method, amount, provider, provider_ref, status) "
	"  SELECT $1, o.created_at, $12[1], $13, $12[2], $12[3], $12[4] FROM o WHERE $13 IS NOT NULL",
	17, {INT8OID, TEXTARRAYOID, UUIDOID, NUMERICOID, JSONBOID,
		INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, NUMERICARRAYOID, TEXTOID,
	TEXTARRAYOID, NUMERICOID, INT8ARRAYOID, TEXTARRAYOID, INT8OID, INT2ARRAYOID}, .generic = true
};

/* The same in a database still at the 1.0 schema (every reservation audited). */
static EsPlan write_v10_plan = {
	"WITH o AS ("
	"  INSERT INTO elfsofa.orders (id, order_number, customer_id, payment_status, payment_method, "
	"                              total, shipping_address, note, idempotency_key) "
	"  VALUES ($1, $2[1], $3, $2[2], $12[1], $4, $5, $2[3], $2[4]) "
	"  RETURNING created_at), "
	"l AS (INSERT INTO elfsofa.order_lines (order_id, line_no, product_id, sku, location, quantity, "
	"                                       unit_price, line_total, created_at) "
	"  SELECT $1, u.n, u.pid, u.sku, u.loc, u.q, u.price, u.price * u.q, o.created_at "
	"  FROM o, unnest($6::bigint[], $7::text[], $8::text[], $9::int[], $10::numeric[]) "
	"          WITH ORDINALITY AS u(pid, sku, loc, q, price, n)), "
	"g AS (INSERT INTO elfsofa.stock_ledger (product_id, location, delta_reserved, reason, order_id, actor) "
	"  SELECT u.pid, u.loc, u.q, '" ES_LEDGER_RESERVE "', $1, $11 "
	"  FROM unnest($6::bigint[], $8::text[], $9::int[]) AS u(pid, loc, q)) "
	"INSERT INTO elfsofa.payments (order_id, order_created_at, method, amount, provider, provider_ref, status) "
	"  SELECT $1, o.created_at, $12[1], $13, $12[2], $12[3], $12[4] FROM o WHERE $13 IS NOT NULL",
	13, {INT8OID, TEXTARRAYOID, UUIDOID, NUMERICOID, JSONBOID,
		INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, NUMERICARRAYOID, TEXTOID,
	TEXTARRAYOID, NUMERICOID}, .generic = true
};









/* A text[] of n strings; NULL pointers become NULL elements. */
static Datum
text_array(char **vals, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *isnull = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};

	for (int i = 0; i < n; i++)
	{
		isnull[i] = vals[i] == NULL;
		d[i] = isnull[i] ? (Datum) 0 : CStringGetTextDatum(vals[i]);
	}
	return PointerGetDatum(construct_md_array(d, isnull, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

static const char *const order_payment_statuses[] = {"pending", "authorized", "captured", NULL};

/* What process_order's steps work out, step by step. */
typedef struct Placed
{
	Datum		customer;
	char	   *actor;
	Numeric		total;
	Numeric    *line_price;
	int64		order_id;
	char	   *order_number;
	const char *status;
	const char *order_payment;
	int			nev;
	char	  **ev_topic;
	char	  **ev_key;
	Jsonb	  **ev_data;
} Placed;

/*
 * order_price: every SKU looked up in the catalog by its unique index (PT404
 * for an unknown or inactive one), the total from catalog prices, and the
 * payment checked against it (PT422) and for a reused provider reference
 * (PT409).
 */
static void
order_price(Order *o, Placed *p)
{
	bool		buckets = es_stock_has_buckets();

	p->total = int64_to_numeric(0);
	/* catalog: ids, prices and thresholds of every SKU, read by its unique index */
	for (int k = 0; k < o->nitems; k++)
	{
		Datum		v[5];
		bool		n[5];

		if (!es_key_lookup(buckets ? &product_by_sku : &product_by_sku_v10, CStringGetTextDatum(o->items[k].sku), v, n))
			continue;
		o->items[k].product_id = DatumGetInt64(v[0]);
		o->items[k].price = DatumGetNumeric(v[1]);
		o->items[k].threshold = n[2] ? 0 : DatumGetInt32(v[2]);
		o->items[k].active = !n[3] && DatumGetBool(v[3]);
		o->items[k].buckets = !buckets || n[4] ? 1 : DatumGetInt16(v[4]);
	}
	for (int k = 0; k < o->nitems; k++)
	{
		if (o->items[k].product_id == 0)
			ereport(ERROR,
					(errcode(ES_ERRCODE_NOT_FOUND),
					 errmsg("unknown sku"),
					 errdetail("items[%d].sku \"%s\" matches no product.", o->items[k].index, o->items[k].sku)));
		if (!o->items[k].active)
			ereport(ERROR,
					(errcode(ES_ERRCODE_NOT_FOUND),
					 errmsg("product is not for sale"),
					 errdetail("items[%d].sku \"%s\" is no longer active.", o->items[k].index, o->items[k].sku)));
	}


	/* the p->total from catalog prices (a split line keeps its sku's price) */
	for (int a = 0; a < o->nallocs; a++)
	{
		OrderItem	   *it = &o->items[o->allocs[a].item];

		p->total = DatumGetNumeric(DirectFunctionCall2(numeric_add, NumericGetDatum(p->total),
													DirectFunctionCall2(numeric_mul, NumericGetDatum(it->price),
																		NumericGetDatum(int64_to_numeric(o->allocs[a].qty)))));
	}

	if (o->has_payment)
	{
		if (o->pay.amount == NULL)
			o->pay.amount = p->total;
		else if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(o->pay.amount), NumericGetDatum(p->total))) != 0)
			ereport(ERROR,
					(errcode(ES_ERRCODE_UNPROCESSABLE),
					 errmsg("payment amount differs from the order total"),
					 errdetail("payment_info.amount was %s but the order total is %s.",
							   DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(o->pay.amount))),
							   DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(p->total)))),
					 errhint("Prices come from the catalog; pay the total process_order computes.")));
		if (o->pay.provider_ref)
		{
			Datum		args[2] = {CStringGetTextDatum(o->pay.provider), CStringGetTextDatum(o->pay.provider_ref)};

			es_exec(&payment_ref_plan, args, NULL, false, 1);
			if (SPI_processed > 0)
				ereport(ERROR,
						(errcode(ES_ERRCODE_CONFLICT),
						 errmsg("payment reference was already recorded"),
						 errdetail("payment_info.provider_ref \"%s\" of provider \"%s\" belongs to order %s.",
								   o->pay.provider_ref, o->pay.provider,
								   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1))));
		}
	}}

/*
 * order_events: the outbox rows of the order: order.created, then per stock
 * row inventory.updated and, when it crossed its threshold,
 * inventory.low_stock.
 */
static void
order_events(Order *o, Placed *p)
{
	p->ev_topic = palloc(sizeof(char *) * (1 + 2 * o->nallocs));
	p->ev_key = palloc(sizeof(char *) * (1 + 2 * o->nallocs));
	p->ev_data = palloc(sizeof(Jsonb *) * (1 + 2 * o->nallocs));
	p->nev = 0;
	p->ev_topic = palloc(sizeof(char *) * (1 + 2 * o->nallocs));
	p->ev_key = palloc(sizeof(char *) * (1 + 2 * o->nallocs));
	p->ev_data = palloc(sizeof(Jsonb *) * (1 + 2 * o->nallocs));
	if (es_guc_emit_events)
	{
		EsJo		ev;
		EsJo	   *item = palloc(sizeof(EsJo) * o->nallocs);
		JsonbValue	items;

		items.type = jbvArray;
		items.val.array.nElems = o->nallocs;
		items.val.array.elems = palloc(sizeof(JsonbValue) * o->nallocs);
		items.val.array.rawScalar = false;
		for (int a = 0; a < o->nallocs; a++)
		{
			item[a].n = 0;
			es_jo_str(&item[a], "sku", o->items[o->allocs[a].item].sku);
			es_jo_str(&item[a], "location", o->allocs[a].location);
			es_jo_int(&item[a], "quantity", o->allocs[a].qty);
			es_jo_num(&item[a], "unit_price", p->line_price[a]);
			es_jo_value(&item[a], &items.val.array.elems[a]);
		}
		ev.n = 0;
		es_jo_int(&ev, "order_id", p->order_id);
		es_jo_str(&ev, "order_number", p->order_number);
		es_jo_str(&ev, "customer_id", DatumGetCString(DirectFunctionCall1(uuid_out, p->customer)));
		es_jo_str(&ev, "status", p->status);
		es_jo_num(&ev, "total", p->total);
		es_jo_str(&ev, "currency", "THB");
		es_jo_str(&ev, "payment_status", p->order_payment);
		es_jo_val(&ev, "items", &items);
		p->ev_topic[p->nev] = "order.created";
		p->ev_key[p->nev] = psprintf(INT64_FORMAT, p->order_id);
		p->ev_data[p->nev++] = es_jo_finish(&ev);

		for (int a = 0; a < o->nallocs; a++)
		{
			Alloc	   *al = &o->allocs[a];
			OrderItem  *it = &o->items[al->item];
			Jsonb	   *low;

			p->ev_topic[p->nev] = "inventory.updated";
			p->ev_key[p->nev] = it->sku;
			p->ev_data[p->nev++] = es_stock_updated_json(it->sku, al->location,
														 al->available_after + al->reserved_after, al->reserved_after,
														 0, al->qty, "reserve", p->order_id);
			/* (a reservation takes qty off available) */
			low = es_low_stock_json(it->sku, al->location, al->available_after, al->qty, it->threshold);
			if (low)
			{
				p->ev_topic[p->nev] = "inventory.low_stock";
				p->ev_key[p->nev] = it->sku;
				p->ev_data[p->nev++] = low;
			}
		}
	}
}

/*
 * order_write: the order, its lines, the ledger rows of its reservations and
 * the payment in one statement, then the outbox rows.
 */
static void
order_write(Order *o, Placed *p)
{
	Datum		values[17];
	char		nulls[17];

	{
		char	  **skus = palloc(sizeof(char *) * o->nallocs);
		char	  **locs = palloc(sizeof(char *) * o->nallocs);
		Datum	   *qtys = palloc(sizeof(Datum) * o->nallocs);
		Datum	   *prices = palloc(sizeof(Datum) * o->nallocs);
		Datum	   *pidd = palloc(sizeof(Datum) * o->nallocs);
		char	   *otext[4] = {p->order_number, (char *) p->order_payment, o->note, o->idem_key};
		char	   *pay[4] = {NULL, NULL, NULL, NULL};

		memset(nulls, ' ', sizeof(nulls));
		for (int a = 0; a < o->nallocs; a++)
		{
			pidd[a] = Int64GetDatum(o->items[o->allocs[a].item].product_id);
			skus[a] = o->items[o->allocs[a].item].sku;
			locs[a] = o->allocs[a].location;
			qtys[a] = Int32GetDatum(o->allocs[a].qty);
			prices[a] = NumericGetDatum(p->line_price[a]);
		}
		values[0] = Int64GetDatum(p->order_id);
		values[1] = text_array(otext, 4);
		values[2] = p->customer;
		values[3] = NumericGetDatum(p->total);
		if (o->shipping)
			values[4] = JsonbPGetDatum(o->shipping);
		else
			nulls[4] = 'n';
		values[5] = PointerGetDatum(construct_array(pidd, o->nallocs, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[6] = text_array(skus, o->nallocs);
		values[7] = text_array(locs, o->nallocs);
		values[8] = PointerGetDatum(construct_array(qtys, o->nallocs, INT4OID, 4, true, TYPALIGN_INT));
		values[9] = PointerGetDatum(construct_array(prices, o->nallocs, NUMERICOID, -1, false, TYPALIGN_INT));
		values[10] = CStringGetTextDatum(p->actor);
		if (o->has_payment)
		{
			pay[0] = o->pay.method;
			pay[1] = o->pay.provider;
			pay[2] = o->pay.provider_ref;
			pay[3] = o->pay.status;
			values[12] = NumericGetDatum(o->pay.amount);
		}
		else
			nulls[12] = 'n';
		values[11] = text_array(pay, 4);
		if (es_stock_has_buckets())
		{
			/*
			 * reservations of one stock row (a hot product's bucket too): their
			 * ledger rows are their audit rows
			 */
			Datum	   *aid = palloc(sizeof(Datum) * o->nallocs);
			bool	   *aid_null = palloc(sizeof(bool) * o->nallocs);
			int			dims[1] = {o->nallocs};
			int			lbs[1] = {1};
			EsAuditStamp st = {0};
			bool		stamped = false;

			for (int a = 0; a < o->nallocs; a++)
			{
				aid_null[a] = o->allocs[a].ledger_bucket < 0 || es_audit_stamp == NULL;
				aid[a] = (Datum) 0;
				if (!aid_null[a])
				{
					es_audit_stamp(&st);
					aid[a] = Int64GetDatum(st.id);
					stamped = true;
				}
			}
			values[13] = PointerGetDatum(construct_md_array(aid, aid_null, 1, dims, lbs, INT8OID, 8,
															FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			for (int a = 0; a < o->nallocs; a++)
				aid[a] = Int16GetDatum(Max(o->allocs[a].ledger_bucket, 0));
			values[16] = PointerGetDatum(construct_array(aid, o->nallocs, INT2OID, 2, true, TYPALIGN_SHORT));
			if (stamped)
			{
				char	   *facts[3] = {st.db_user, st.actor_role, st.application_name};

				values[14] = text_array(facts, 3);
				values[15] = Int64GetDatum(st.txid);
			}
			else
			{
				nulls[14] = 'n';
				nulls[15] = 'n';
			}
			es_exec(&write_plan, values, nulls, false, 0);
		}
		else
			es_exec(&write_v10_plan, values, nulls, false, 0);
		if (p->nev > 0)
		{
			int64	   *ev_id = palloc(sizeof(int64) * p->nev);

			es_outbox_write_many(p->nev, (const char *const *) p->ev_topic, (const char *const *) p->ev_key, p->ev_data, ev_id);
			for (int i = 0; i < p->nev; i++)
				es_event_written(ev_id[i], p->ev_topic[i], p->ev_key[i], p->ev_data[i]);
		}
	}
}

/* order_response: the caller's answer, built in cxt so that it outlives SPI. */
static Jsonb *
order_response(Placed *p, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	JsonbParseState *st = NULL;
	Jsonb	   *result;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	es_jb_int(&st, "order_id", p->order_id);
	es_jb_str(&st, "order_number", p->order_number);
	es_jb_str(&st, "status", p->status);
	es_jb_num(&st, "total", p->total);
	es_jb_str(&st, "currency", "THB");
	es_jb_bool(&st, "replayed", false);
	result = es_jb_finish(&st);
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * elfsofa.process_order(order_data, inventory_updates, payment_info): the
 * whole order in the caller's transaction, as a sequence of steps; any error
 * leaves nothing behind.
 */
Datum
elfsofa_process_order(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	Order		o = {0};
	Placed		p = {0};
	char	   *hash = NULL;
	Jsonb	   *result;

	/* parse: every malformed request fails before any lock (order_parse.c) */
	if (PG_ARGISNULL(0) || es_jsonb_is_null(PG_GETARG_JSONB_P(0)))
		es_bad_input("order_data", "order_data is required", "was null");
	es_order_parse(PG_GETARG_JSONB_P(0), PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1), &o);
	o.has_payment = es_parse_payment(PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2), &o.pay,
									 order_payment_statuses);
	/* a payment other than pending comes from the payment webhook, never from the customer */
	if (o.has_payment && strcmp(o.pay.status, "pending") != 0 && !es_role_is_privileged())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a privileged role can record a payment as %s", o.pay.status),
				 errdetail("payment_info.status was \"%s\"; a customer's order starts with a pending payment.", o.pay.status),
				 errhint("The payment provider's webhook records it with elfsofa.record_payment (service_role).")));
	p.actor = es_actor();

	SPI_connect();
	p.customer = es_caller_customer(o.customer_text, "customer_id");

	/* replay: first, so that it depends on neither today's catalog nor stock (order_idempotency.c) */
	if (o.idem_key && (result = es_order_replay(&o, p.customer, &hash, callcxt)) != NULL)
	{
		SPI_finish();
		PG_RETURN_JSONB_P(result);
	}

	/* price: catalog prices, the total, the payment checked against it */
	order_price(&o, &p);

	/* reserve: in the global lock order (inventory/reserve.c) */
	for (int a = 0; a < o.nallocs; a++)
	{
		o.allocs[a].product_id = o.items[o.allocs[a].item].product_id;
		o.allocs[a].sku = o.items[o.allocs[a].item].sku;
		o.allocs[a].buckets = o.items[o.allocs[a].item].buckets;
	}
	es_stock_reserve(&o.allocs, &o.nallocs, o.maxallocs);

	/* every line (a split one too) is priced from the catalog */
	p.line_price = palloc(sizeof(Numeric) * o.nallocs);
	for (int a = 0; a < o.nallocs; a++)
		p.line_price[a] = o.items[o.allocs[a].item].price;

	/* write: id and number, then one statement for order, lines, ledger and payment */
	p.order_id = next_order_id(&p.order_number);
	p.status = "pending";
	p.order_payment = o.has_payment ? es_payment_order_status("unpaid", o.pay.status) : NULL;
	if (p.order_payment == NULL)
		p.order_payment = "unpaid";
	order_events(&o, &p);
	order_write(&o, &p);

	/* answer, and keep it for replays */
	result = order_response(&p, callcxt);
	if (o.idem_key)
		es_order_save_key(&o, p.customer, hash, p.order_id, result);

	SPI_finish();
	PG_RETURN_JSONB_P(result);
}
