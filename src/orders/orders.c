/*
 * orders.c — process_order(): validate an order, price it from the catalog,
 * reserve stock in one global lock order, and write the order, its lines, the
 * ledger, the payment, the events and the idempotency key in the caller's
 * transaction.  Also the reusable "which customer is the caller" lookup and
 * the jsonb helpers lifecycle.c shares (orders.h).
 */
#include "orders/orders.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "common/cryptohash.h"
#include "common/hashfn.h"
#include "common/sha2.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "storage/lock.h"
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
PG_FUNCTION_INFO_V1(elfsofa_purge_idempotency_keys);

/* Advisory-lock class for idempotency keys ('ELFi'), first half of the two-int4 key. */
#define ES_IDEM_LOCK_CLASS	0x454C4669
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
 * next_order_id takes the next order id and makes its number.  The id and the
 * clock reading that gives the number's year are taken under one short lock
 * (released at once, not held to commit), so a larger id never carries an
 * earlier year: around a year turn every number before the first new-year one
 * has a smaller id.  The year is the calendar year of that moment in
 * elfsofa.order_number_timezone, not of the transaction's start, which can lie
 * before an order that took its id later.
 */
static int64
next_order_id(char **number)
{
	LOCKTAG		tag;
	int64		id;
	TimestampTz now;
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	Oid			seq = get_relname_relid("orders_id_seq", get_namespace_oid("elfsofa", false));

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, ES_ORDER_NUMBER_LOCK_CLASS, 0, 2);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	id = nextval_internal(seq, true);
	now = GetCurrentTimestamp();
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



/* Appends a reserved line; available_after comes from the reserve UPDATE's RETURNING row. */
static void
push_reserved(Alloc **lines, int *nlines, int *maxlines, const Alloc *al)
{
	bool		isnull;

	if (*nlines == *maxlines)
	{
		*maxlines *= 2;
		*lines = repalloc(*lines, sizeof(Alloc) * *maxlines);
	}
	(*lines)[*nlines] = *al;
	(*lines)[*nlines].available_after =
		DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	(*nlines)++;
}


static EsKeyLookup product_by_sku = {
	"products", "sku", 4, {"id", "price", "low_stock_threshold", "is_active"}
};

static EsPlan idem_lookup_plan = {
	"SELECT request_hash, response || '{\"replayed\": true}'::jsonb FROM elfsofa.idempotency_keys "
	"WHERE customer_id = $1 AND key = $2 AND expires_at > now()",
	2, {UUIDOID, TEXTOID}, .generic = true
};

static EsPlan payment_ref_plan = {
	"SELECT order_id FROM elfsofa.payments WHERE provider = $1 AND provider_ref = $2",
	2, {TEXTOID, TEXTOID}, .generic = true
};

/* Reserve: only succeeds when enough is available on the locked, current row. */
static EsPlan reserve_plan = {
	"UPDATE elfsofa.stock_levels SET reserved = reserved + $3, updated_at = now() "
	"WHERE product_id = $1 AND location = $2 AND on_hand - reserved >= $3 "
	"RETURNING on_hand - reserved",
	3, {INT8OID, TEXTOID, INT4OID}, .generic = true
};

/* One stock row, locked, for an exact report of what it holds. */
static EsPlan lock_one_plan = {
	"SELECT on_hand - reserved FROM elfsofa.stock_levels WHERE product_id = $1 AND location = $2 FOR UPDATE",
	2, {INT8OID, TEXTOID}, .generic = true
};

/* Every location of one product, locked in the global order: main, then the others by name. */
static EsPlan lock_all_plan = {
	"SELECT location, on_hand - reserved FROM elfsofa.stock_levels WHERE product_id = $1 "
	"ORDER BY location <> 'main', location FOR UPDATE",
	1, {INT8OID}, .generic = true
};

/*
 * Order, lines, ledger and payment in one statement; lines share the order's
 * created_at, so they land in the same partition.  The outbox events follow
 * as direct inserts (es_outbox_write).
 * $2 = {order_number, payment_status, note, idempotency_key},
 * $12 = {method, provider, provider_ref, status}.
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
	"g AS (INSERT INTO elfsofa.stock_ledger (product_id, location, delta_reserved, reason, order_id, actor) "
	"  SELECT u.pid, u.loc, u.q, '" ES_LEDGER_RESERVE "', $1, $11 "
	"  FROM unnest($6::bigint[], $8::text[], $9::int[]) AS u(pid, loc, q)) "
	"INSERT INTO elfsofa.payments (order_id, order_created_at, method, amount, provider, provider_ref, status) "
	"  SELECT $1, o.created_at, $12[1], $13, $12[2], $12[3], $12[4] FROM o WHERE $13 IS NOT NULL",
	13, {INT8OID, TEXTARRAYOID, UUIDOID, NUMERICOID, JSONBOID,
		INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, NUMERICARRAYOID, TEXTOID,
	TEXTARRAYOID, NUMERICOID}, .generic = true
};

static EsPlan idem_save_plan = {
	"INSERT INTO elfsofa.idempotency_keys AS k (customer_id, key, request_hash, order_id, response) "
	"VALUES ($1, $2, $3, $4, $5) "
	"ON CONFLICT (customer_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, "
	"  order_id = EXCLUDED.order_id, response = EXCLUDED.response, created_at = now(), "
	"  expires_at = now() + interval '24 hours' "
	"WHERE k.expires_at <= now()",
	5, {UUIDOID, TEXTOID, TEXTOID, INT8OID, JSONBOID}, .generic = true
};

static EsPlan purge_plan = {
	"DELETE FROM elfsofa.idempotency_keys WHERE expires_at <= now()",
	0, {InvalidOid}
};

/*
 * The global stock-row lock order: product id, then location with "main"
 * first and the others by name (es_location_cmp).  main comes first because
 * the fast path's conditional UPDATE of the main row may keep that row locked
 * even when it fails (READ COMMITTED re-check after a concurrent update locks
 * the newest version before testing the condition), and the spill-over that
 * follows must only lock rows after it.  It is also the order stock is taken
 * in, so lock order and allocation order are one rule.
 */
static int
es_location_cmp(const char *x, const char *y)
{
	bool		xm = strcmp(x, "main") == 0;
	bool		ym = strcmp(y, "main") == 0;

	if (xm != ym)
		return xm ? -1 : 1;
	return strcmp(x, y);
}

static OrderItem *sort_items;

static int
alloc_cmp(const void *a, const void *b)
{
	const Alloc *x = a;
	const Alloc *y = b;
	int64		px = sort_items[x->item].product_id;
	int64		py = sort_items[y->item].product_id;

	if (px != py)
		return px < py ? -1 : 1;
	return es_location_cmp(x->location, y->location);
}

/* canonical order for the request hash: sku, then location */
static Order *canon_order;

static int
alloc_canon_cmp(const void *a, const void *b)
{
	const Alloc *x = a;
	const Alloc *y = b;
	int			c = strcmp(canon_order->items[x->item].sku, canon_order->items[y->item].sku);

	return c != 0 ? c : strcmp(x->location, y->location);
}

static void
add_field(StringInfo s, const char *tag, const char *val)
{
	/* length-prefixed, so no two different requests share a canonical form */
	if (val == NULL)
		appendStringInfo(s, "%s-;", tag);
	else
		appendStringInfo(s, "%s%zu:%s;", tag, strlen(val), val);
}

/* SHA-256 of the request after validation (merged items, unknown fields dropped). */
static char *
request_hash(Order *o, Datum customer)
{
	StringInfoData s;
	pg_cryptohash_ctx *ctx;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char	   *hex = palloc(PG_SHA256_DIGEST_LENGTH * 2 + 1);

	initStringInfo(&s);
	add_field(&s, "c", DatumGetCString(DirectFunctionCall1(uuid_out, customer)));
	for (int a = 0; a < o->nallocs; a++)	/* sorted by sku and location */
	{
		Alloc	   *al = &o->allocs[a];

		add_field(&s, "s", o->items[al->item].sku);
		add_field(&s, "l", al->automatic ? NULL : al->location);
		appendStringInfo(&s, "q%d;", al->qty);
	}
	add_field(&s, "a", o->shipping ? JsonbToCString(NULL, &o->shipping->root, VARSIZE(o->shipping)) : NULL);
	add_field(&s, "n", o->note);
	if (o->has_payment)
	{
		add_field(&s, "pm", o->pay.method);
		add_field(&s, "pa", o->pay.amount ? numeric_normalize(o->pay.amount) : NULL);
		add_field(&s, "pp", o->pay.provider);
		add_field(&s, "pr", o->pay.provider_ref);
		add_field(&s, "ps", o->pay.status);
	}

	ctx = pg_cryptohash_create(PG_SHA256);
	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (uint8 *) s.data, s.len) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "elfsofa: could not compute SHA-256");
	pg_cryptohash_free(ctx);
	for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		sprintf(hex + 2 * i, "%02x", digest[i]);
	return hex;
}

/* Serialises concurrent calls with one key; held to the end of the transaction. */
static void
lock_idempotency_key(Datum customer, const char *key)
{
	StringInfoData s;

	initStringInfo(&s);
	appendBinaryStringInfo(&s, (char *) DatumGetUUIDP(customer)->data, UUID_LEN);
	appendStringInfoString(&s, key);
	DirectFunctionCall2(pg_advisory_xact_lock_int4,
						Int32GetDatum(ES_IDEM_LOCK_CLASS),
						Int32GetDatum((int32) hash_bytes((unsigned char *) s.data, s.len)));
}

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

/*
 * elfsofa.process_order(order_data, inventory_updates, payment_info): the
 * whole order in the caller's transaction; any error leaves nothing behind.
 */
Datum
elfsofa_process_order(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext spicxt;
	Order		o = {0};
	Datum		customer;
	char	   *hash = NULL;
	char	   *actor;
	Numeric		total = int64_to_numeric(0);
	Numeric    *line_price;
	Datum		values[16];
	char		nulls[16];
	bool		isnull;
	int64		order_id;
	char	   *order_number;
	char	   *status;
	const char *order_payment;
	char	  **ev_topic;
	char	  **ev_key;
	Jsonb	  **ev_data;
	int			nev = 0;
	Jsonb	   *result;
	JsonbParseState *st = NULL;

	if (PG_ARGISNULL(0) || es_jsonb_is_null(PG_GETARG_JSONB_P(0)))
		es_bad_input("order_data", "order_data is required", "was null");
	es_order_parse(PG_GETARG_JSONB_P(0), PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1), &o);
	o.has_payment = es_parse_payment(PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2), &o.pay,
									 order_payment_statuses);
	actor = es_actor();

	SPI_connect();
	spicxt = CurrentMemoryContext;
	customer = es_caller_customer(o.customer_text, "customer_id");

	/* idempotency first: a replay must not depend on today's catalog or stock */
	if (o.idem_key)
	{
		Datum		args[2] = {customer, CStringGetTextDatum(o.idem_key)};

		canon_order = &o;
		qsort(o.allocs, o.nallocs, sizeof(Alloc), alloc_canon_cmp);
		hash = request_hash(&o, customer);
		lock_idempotency_key(customer, o.idem_key);
		es_exec(&idem_lookup_plan, args, NULL, false, 1);
		if (SPI_processed > 0)
		{
			char	   *stored = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			Datum		resp;

			if (strcmp(stored, hash) != 0)
				ereport(ERROR,
						(errcode(ES_ERRCODE_CONFLICT),
						 errmsg("idempotency key was already used for a different request"),
						 errdetail("idempotency_key \"%s\" belongs to an earlier order with other contents.", o.idem_key),
						 errhint("Use a new idempotency key for a new order.")));
			resp = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
			MemoryContextSwitchTo(callcxt);
			result = DatumGetJsonbPCopy(resp);
			SPI_finish();
			PG_RETURN_JSONB_P(result);
		}
	}

	/* catalog: ids, prices and thresholds of every SKU, read by its unique index */
	for (int k = 0; k < o.nitems; k++)
	{
		Datum		v[4];
		bool		n[4];

		if (!es_key_lookup(&product_by_sku, CStringGetTextDatum(o.items[k].sku), v, n))
			continue;
		o.items[k].product_id = DatumGetInt64(v[0]);
		o.items[k].price = DatumGetNumeric(v[1]);
		o.items[k].threshold = n[2] ? 0 : DatumGetInt32(v[2]);
		o.items[k].active = !n[3] && DatumGetBool(v[3]);
	}
	for (int k = 0; k < o.nitems; k++)
	{
		if (o.items[k].product_id == 0)
			ereport(ERROR,
					(errcode(ES_ERRCODE_NOT_FOUND),
					 errmsg("unknown sku"),
					 errdetail("items[%d].sku \"%s\" matches no product.", o.items[k].index, o.items[k].sku)));
		if (!o.items[k].active)
			ereport(ERROR,
					(errcode(ES_ERRCODE_NOT_FOUND),
					 errmsg("product is not for sale"),
					 errdetail("items[%d].sku \"%s\" is no longer active.", o.items[k].index, o.items[k].sku)));
	}

	sort_items = o.items;
	qsort(o.allocs, o.nallocs, sizeof(Alloc), alloc_cmp);

	/* the total from catalog prices (a split line keeps its sku's price) */
	for (int a = 0; a < o.nallocs; a++)
	{
		OrderItem	   *it = &o.items[o.allocs[a].item];

		total = DatumGetNumeric(DirectFunctionCall2(numeric_add, NumericGetDatum(total),
													DirectFunctionCall2(numeric_mul, NumericGetDatum(it->price),
																		NumericGetDatum(int64_to_numeric(o.allocs[a].qty)))));
	}

	if (o.has_payment)
	{
		if (o.pay.amount == NULL)
			o.pay.amount = total;
		else if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(o.pay.amount), NumericGetDatum(total))) != 0)
			ereport(ERROR,
					(errcode(ES_ERRCODE_UNPROCESSABLE),
					 errmsg("payment amount differs from the order total"),
					 errdetail("payment_info.amount was %s but the order total is %s.",
							   DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(o.pay.amount))),
							   DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(total)))),
					 errhint("Prices come from the catalog; pay the total process_order computes.")));
		if (o.pay.provider_ref)
		{
			Datum		args[2] = {CStringGetTextDatum(o.pay.provider), CStringGetTextDatum(o.pay.provider_ref)};

			es_exec(&payment_ref_plan, args, NULL, false, 1);
			if (SPI_processed > 0)
				ereport(ERROR,
						(errcode(ES_ERRCODE_CONFLICT),
						 errmsg("payment reference was already recorded"),
						 errdetail("payment_info.provider_ref \"%s\" of provider \"%s\" belongs to order %s.",
								   o.pay.provider_ref, o.pay.provider,
								   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1))));
		}
	}

	/*
	 * Reserve stock in the global lock order (product id, then main, then the
	 * other locations by name; see es_location_cmp), so concurrent orders
	 * never deadlock.  A placed (or automatic-from-main) allocation is one
	 * conditional UPDATE; only when that fails do we lock rows explicitly:
	 * the placed row itself, or for an automatic one every location of the
	 * product in that order (main, possibly already held, comes first).
	 */
	{
		Alloc	   *lines = palloc0(sizeof(Alloc) * o.maxallocs);
		int			nlines = 0;
		int			maxlines = o.maxallocs;

		for (int a = 0; a < o.nallocs; a++)
		{
			Alloc	   *al = &o.allocs[a];
			OrderItem  *it = &o.items[al->item];
			Datum		args[3] = {Int64GetDatum(it->product_id), CStringGetTextDatum(al->location), Int32GetDatum(al->qty)};
			int			nloc;
			char	  **loc;
			int32	   *avail;
			int64		total_avail = 0;
			int32		need;

			/* fast path: the whole quantity from the named (or main) row */
			es_exec(&reserve_plan, args, NULL, false, 0);
			if (SPI_processed == 1)
			{
				push_reserved(&lines, &nlines, &maxlines, al);
				continue;
			}

			if (!al->automatic)
			{
				/* a placed allocation: lock its row, then decide on what it holds now */
				int32		now_avail = 0;

				es_exec(&lock_one_plan, args, NULL, false, 1);
				if (SPI_processed > 0)
					now_avail = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
				if (now_avail < al->qty)
					ereport(ERROR,
							(errcode(ES_ERRCODE_CONFLICT),
							 errmsg("insufficient stock"),
							 errdetail("sku \"%s\" has %d available at location \"%s\"; the order needs %d.",
									   it->sku, Max(now_avail, 0), al->location, al->qty)));
				es_exec(&reserve_plan, args, NULL, false, 0);
				if (SPI_processed != 1)
					elog(ERROR, "elfsofa: locked stock row of sku \"%s\" at \"%s\" refused %d units",
						 it->sku, al->location, al->qty);
				push_reserved(&lines, &nlines, &maxlines, al);
				continue;
			}

			/* automatic and main is short: lock every location of the sku, then split */
			es_exec(&lock_all_plan, args, NULL, false, 0);
			nloc = (int) SPI_processed;
			loc = palloc(sizeof(char *) * Max(nloc, 1));
			avail = palloc(sizeof(int32) * Max(nloc, 1));
			for (int r = 0; r < nloc; r++)
			{
				loc[r] = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
				avail[r] = Max(DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull)), 0);
				total_avail += avail[r];
			}
			SPI_freetuptable(SPI_tuptable);
			if (total_avail < al->qty)
			{
				StringInfoData per;
				int32		main_avail = 0;
				bool		elsewhere = false;

				initStringInfo(&per);
				for (int r = 0; r < nloc; r++)
				{
					if (strcmp(loc[r], "main") == 0)
						main_avail = avail[r];
					else if (avail[r] > 0)
						elsewhere = true;
				}
				if (!elsewhere)
					ereport(ERROR,
							(errcode(ES_ERRCODE_CONFLICT),
							 errmsg("insufficient stock"),
							 errdetail("sku \"%s\" has %d available at location \"main\"; the order needs %d.",
									   it->sku, main_avail, al->qty)));
				appendStringInfo(&per, "main %d", main_avail);
				for (int r = 0; r < nloc; r++)
					if (strcmp(loc[r], "main") != 0 && avail[r] > 0)
						appendStringInfo(&per, ", %s %d", loc[r], avail[r]);
				ereport(ERROR,
						(errcode(ES_ERRCODE_CONFLICT),
						 errmsg("insufficient stock"),
						 errdetail("sku \"%s\" has %lld available over all locations (%s); the order needs %d.",
								   it->sku, (long long) total_avail, per.data, al->qty),
						 errhint("Without inventory_updates units come from main first, then the other locations by name.")));
			}

			/* rows arrive main first, then by name: take from each in turn */
			need = al->qty;
			for (int r = 0; r < nloc && need > 0; r++)
			{
				int32		take = Min(avail[r], need);
				Datum		rargs[3] = {args[0], CStringGetTextDatum(loc[r]), Int32GetDatum(take)};

				if (take == 0)
					continue;
				need -= take;
				es_exec(&reserve_plan, rargs, NULL, false, 0);
				if (SPI_processed != 1)
					elog(ERROR, "elfsofa: locked stock row of sku \"%s\" at \"%s\" refused %d units",
						 it->sku, loc[r], take);
				{
					Alloc		part = {.item = al->item, .location = loc[r], .qty = take, .automatic = true};

					push_reserved(&lines, &nlines, &maxlines, &part);
				}
			}
			Assert(need == 0);
		}
		o.allocs = lines;
		o.nallocs = nlines;
	}

	/* every line is priced from the catalog */
	line_price = palloc(sizeof(Numeric) * o.nallocs);
	for (int a = 0; a < o.nallocs; a++)
		line_price[a] = o.items[o.allocs[a].item].price;

	/* the order's id and number are known before the one writing statement */
	order_id = next_order_id(&order_number);
	status = "pending";
	order_payment = o.has_payment ? es_payment_order_status("unpaid", o.pay.status) : NULL;
	if (order_payment == NULL)
		order_payment = "unpaid";

	/* outbox rows: order.created, then inventory.updated / inventory.low_stock per stock row */
	ev_topic = palloc(sizeof(char *) * (1 + 2 * o.nallocs));
	ev_key = palloc(sizeof(char *) * (1 + 2 * o.nallocs));
	ev_data = palloc(sizeof(Jsonb *) * (1 + 2 * o.nallocs));
	if (es_guc_emit_events)
	{
		EsJo		ev;
		EsJo	   *item = palloc(sizeof(EsJo) * o.nallocs);
		JsonbValue	items;

		items.type = jbvArray;
		items.val.array.nElems = o.nallocs;
		items.val.array.elems = palloc(sizeof(JsonbValue) * o.nallocs);
		items.val.array.rawScalar = false;
		for (int a = 0; a < o.nallocs; a++)
		{
			item[a].n = 0;
			es_jo_str(&item[a], "sku", o.items[o.allocs[a].item].sku);
			es_jo_str(&item[a], "location", o.allocs[a].location);
			es_jo_int(&item[a], "quantity", o.allocs[a].qty);
			es_jo_num(&item[a], "unit_price", line_price[a]);
			es_jo_value(&item[a], &items.val.array.elems[a]);
		}
		ev.n = 0;
		es_jo_int(&ev, "order_id", order_id);
		es_jo_str(&ev, "order_number", order_number);
		es_jo_str(&ev, "customer_id", DatumGetCString(DirectFunctionCall1(uuid_out, customer)));
		es_jo_str(&ev, "status", status);
		es_jo_num(&ev, "total", total);
		es_jo_str(&ev, "currency", "THB");
		es_jo_str(&ev, "payment_status", order_payment);
		es_jo_val(&ev, "items", &items);
		ev_topic[nev] = "order.created";
		ev_key[nev] = psprintf(INT64_FORMAT, order_id);
		ev_data[nev++] = es_jo_finish(&ev);

		for (int a = 0; a < o.nallocs; a++)
		{
			Alloc	   *al = &o.allocs[a];
			OrderItem  *it = &o.items[al->item];

			ev.n = 0;
			es_jo_str(&ev, "sku", it->sku);
			es_jo_str(&ev, "location", al->location);
			es_jo_int(&ev, "available", al->available_after);
			es_jo_int(&ev, "delta_reserved", al->qty);
			es_jo_str(&ev, "reason", "reserve");
			es_jo_int(&ev, "order_id", order_id);
			ev_topic[nev] = "inventory.updated";
			ev_key[nev] = it->sku;
			ev_data[nev++] = es_jo_finish(&ev);

			if (al->available_after < it->threshold && al->available_after + al->qty >= it->threshold)
			{
				ev.n = 0;
				es_jo_str(&ev, "sku", it->sku);
				es_jo_str(&ev, "location", al->location);
				es_jo_int(&ev, "available", al->available_after);
				es_jo_int(&ev, "threshold", it->threshold);
				ev_topic[nev] = "inventory.low_stock";
				ev_key[nev] = it->sku;
				ev_data[nev++] = es_jo_finish(&ev);
			}
		}
	}

	/* order + lines + ledger + payment + events */
	{
		char	  **skus = palloc(sizeof(char *) * o.nallocs);
		char	  **locs = palloc(sizeof(char *) * o.nallocs);
		Datum	   *qtys = palloc(sizeof(Datum) * o.nallocs);
		Datum	   *prices = palloc(sizeof(Datum) * o.nallocs);
		Datum	   *pidd = palloc(sizeof(Datum) * o.nallocs);
		char	   *otext[4] = {order_number, (char *) order_payment, o.note, o.idem_key};
		char	   *pay[4] = {NULL, NULL, NULL, NULL};

		memset(nulls, ' ', sizeof(nulls));
		for (int a = 0; a < o.nallocs; a++)
		{
			pidd[a] = Int64GetDatum(o.items[o.allocs[a].item].product_id);
			skus[a] = o.items[o.allocs[a].item].sku;
			locs[a] = o.allocs[a].location;
			qtys[a] = Int32GetDatum(o.allocs[a].qty);
			prices[a] = NumericGetDatum(line_price[a]);
		}
		values[0] = Int64GetDatum(order_id);
		values[1] = text_array(otext, 4);
		values[2] = customer;
		values[3] = NumericGetDatum(total);
		if (o.shipping)
			values[4] = JsonbPGetDatum(o.shipping);
		else
			nulls[4] = 'n';
		values[5] = PointerGetDatum(construct_array(pidd, o.nallocs, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[6] = text_array(skus, o.nallocs);
		values[7] = text_array(locs, o.nallocs);
		values[8] = PointerGetDatum(construct_array(qtys, o.nallocs, INT4OID, 4, true, TYPALIGN_INT));
		values[9] = PointerGetDatum(construct_array(prices, o.nallocs, NUMERICOID, -1, false, TYPALIGN_INT));
		values[10] = CStringGetTextDatum(actor);
		if (o.has_payment)
		{
			pay[0] = o.pay.method;
			pay[1] = o.pay.provider;
			pay[2] = o.pay.provider_ref;
			pay[3] = o.pay.status;
			values[12] = NumericGetDatum(o.pay.amount);
		}
		else
			nulls[12] = 'n';
		values[11] = text_array(pay, 4);
		es_exec(&write_plan, values, nulls, false, 0);
		if (nev > 0)
		{
			int64	   *ev_id = palloc(sizeof(int64) * nev);

			es_outbox_write_many(nev, (const char *const *) ev_topic, (const char *const *) ev_key, ev_data, ev_id);
			for (int i = 0; i < nev; i++)
				es_event_written(ev_id[i], ev_topic[i], ev_key[i], ev_data[i]);
		}
	}

	/* the response, built in the caller's memory so it outlives SPI */
	MemoryContextSwitchTo(callcxt);
	st = NULL;
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	es_jb_int(&st, "order_id", order_id);
	es_jb_str(&st, "order_number", order_number);
	es_jb_str(&st, "status", status);
	es_jb_num(&st, "total", total);
	es_jb_str(&st, "currency", "THB");
	es_jb_bool(&st, "replayed", false);
	result = es_jb_finish(&st);
	MemoryContextSwitchTo(spicxt);

	if (o.idem_key)
	{
		Datum		args[5] = {customer, CStringGetTextDatum(o.idem_key), CStringGetTextDatum(hash),
		Int64GetDatum(order_id), JsonbPGetDatum(result)};

		es_exec(&idem_save_plan, args, NULL, false, 0);
		if (SPI_processed != 1)
			ereport(ERROR,
					(errcode(ES_ERRCODE_CONFLICT),
					 errmsg("idempotency key was already used"),
					 errdetail("idempotency_key \"%s\" was taken by a concurrent request.", o.idem_key)));
	}

	SPI_finish();
	PG_RETURN_JSONB_P(result);
}

/* elfsofa.purge_idempotency_keys(): upkeep, deletes expired keys */
Datum
elfsofa_purge_idempotency_keys(PG_FUNCTION_ARGS)
{
	uint64		n;

	SPI_connect();
	es_exec(&purge_plan, NULL, NULL, false, 0);
	n = SPI_processed;
	SPI_finish();
	PG_RETURN_INT64((int64) n);
}
