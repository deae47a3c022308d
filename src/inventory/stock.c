/*
 * stock.c — stock levels and the stock ledger: restock(), available() and
 * es_stock_apply().
 * Every change to stock_levels is paired with one stock_ledger row in the same
 * statement, so the ledger always sums to the levels.
 */
#include "inventory/inventory.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(elfsofa_restock);
PG_FUNCTION_INFO_V1(elfsofa_available);
PG_FUNCTION_INFO_V1(elfsofa_adjust_stock);

/* Told of every restock; set by src/init.c to the events area's announcer. */
EsStockChangeListener es_stock_change_listener = NULL;

/* One statement: find the product, add stock, write the ledger row. */
static EsPlan restock_plan = {
	"WITH p AS (SELECT id, stock_buckets FROM elfsofa.products WHERE sku = $1), "
	"s AS (INSERT INTO elfsofa.stock_levels AS sl (product_id, location, on_hand) "
	"      SELECT p.id, $2, $3 FROM p "
	"      ON CONFLICT (product_id, location, bucket) DO UPDATE "
	"      SET on_hand = sl.on_hand + EXCLUDED.on_hand, updated_at = now() "
	"      RETURNING sl.on_hand, sl.reserved), "
	"l AS (INSERT INTO elfsofa.stock_ledger (product_id, location, delta_on_hand, reason, actor, note) "
	"      SELECT p.id, $2, $3, 'restock', $4, $5 FROM p) "
	"SELECT on_hand, reserved, p.id, p.stock_buckets FROM s, p",
	5, {TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID}
};

/* The same in a database still at the 1.0 schema (no buckets). */
static EsPlan restock_v10_plan = {
	"WITH p AS (SELECT id FROM elfsofa.products WHERE sku = $1), "
	"s AS (INSERT INTO elfsofa.stock_levels AS sl (product_id, location, on_hand) "
	"      SELECT p.id, $2, $3 FROM p "
	"      ON CONFLICT (product_id, location) DO UPDATE "
	"      SET on_hand = sl.on_hand + EXCLUDED.on_hand, updated_at = now() "
	"      RETURNING sl.on_hand, sl.reserved), "
	"l AS (INSERT INTO elfsofa.stock_ledger (product_id, location, delta_on_hand, reason, actor, note) "
	"      SELECT p.id, $2, $3, 'restock', $4, $5 FROM p) "
	"SELECT on_hand, reserved, p.id, 1::smallint FROM s, p",
	5, {TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID}
};

static EsPlan available_plan = {
	"SELECT (SELECT COALESCE(sum(sl.on_hand - sl.reserved), 0)::int "
	"          FROM elfsofa.stock_levels sl "
	"         WHERE sl.product_id = p.id AND ($2::text IS NULL OR sl.location = $2)) "
	"  FROM elfsofa.products p WHERE p.sku = $1",
	2, {TEXTOID, TEXTOID}
};

static void
unknown_sku(const char *sku)
{
	ereport(ERROR,
			(errcode(ES_ERRCODE_NOT_FOUND),
			 errmsg("unknown sku"),
			 errdetail("No product has sku \"%s\".", sku)));
}

/* elfsofa.restock(sku, quantity, location, note) returns the new on-hand count */
Datum
elfsofa_restock(PG_FUNCTION_ARGS)
{
	char	   *sku = es_require_text(fcinfo, 0, "sku", 64);
	int32		qty = es_require_quantity(fcinfo, 1, "quantity");
	char	   *location = PG_ARGISNULL(2) ? "main" : es_require_text(fcinfo, 2, "location", 32);
	char	   *note = es_optional_text(fcinfo, 3, "note", ES_MAX_TEXT_LEN);
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	int32		on_hand;
	int32		reserved;

	es_check_location(location, "location");

	SPI_connect();
	values[0] = CStringGetTextDatum(sku);
	values[1] = CStringGetTextDatum(location);
	values[2] = Int32GetDatum(qty);
	values[3] = CStringGetTextDatum(es_actor());
	if (note)
		values[4] = CStringGetTextDatum(note);
	else
		nulls[4] = 'n';

	es_exec(es_stock_has_buckets() ? &restock_plan : &restock_v10_plan, values, nulls, false, 0);
	if (SPI_processed == 0)
		unknown_sku(sku);
	on_hand = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	reserved = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	/* a hot product: the new units went to bucket 0; spread them over the buckets (buckets.c) */
	if (DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull)) > 1)
		es_stock_even_out(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull)),
						  location, &on_hand, &reserved);
	if (es_stock_change_listener)
		es_stock_change_listener(sku, location, on_hand, reserved, qty, 0, "restock", -1);
	SPI_finish();

	PG_RETURN_INT32(on_hand);
}

/* elfsofa.available(sku, location) = on hand minus reserved, over all locations when NULL */
Datum
elfsofa_available(PG_FUNCTION_ARGS)
{
	char	   *sku = es_require_text(fcinfo, 0, "sku", 64);
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	bool		isnull;
	int32		avail;

	values[0] = CStringGetTextDatum(sku);
	if (PG_ARGISNULL(1))
		nulls[1] = 'n';
	else
	{
		char	   *location = es_require_text(fcinfo, 1, "location", 32);

		es_check_location(location, "location");
		values[1] = CStringGetTextDatum(location);
	}

	SPI_connect();
	es_exec(&available_plan, values, nulls, true, 0);
	if (SPI_processed == 0)
		unknown_sku(sku);
	avail = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();

	PG_RETURN_INT32(avail);
}

/*
 * One stock row changed and its ledger row, in one statement (es_stock_apply):
 * bucket 0, the only row of a product that is not hot, when it can take the
 * change; RETURNING the row's availability and reservations (a hot
 * product's other buckets are added by es_stock_other_buckets).
 */
static EsPlan stock_effect_plan = {
	"WITH s AS (UPDATE elfsofa.stock_levels SET on_hand = on_hand + $3, reserved = reserved + $4, updated_at = now() "
	"           WHERE product_id = $1 AND location = $2 AND bucket = 0 "
	"             AND reserved + $4 >= 0 AND on_hand + $3 >= reserved + $4 "
	"           RETURNING on_hand - reserved AS available, reserved), "
	"l AS (INSERT INTO elfsofa.stock_ledger (product_id, location, delta_on_hand, delta_reserved, reason, order_id, actor, note, "
	"                                        audit_id, txid, db_user, actor_role, application_name, bucket) "
	"      SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $11, $10[1], $10[2], $10[3], "
	"             CASE WHEN $9 IS NOT NULL THEN 0 END FROM s) "
	"SELECT available, reserved FROM s",
	11, {INT8OID, TEXTOID, INT4OID, INT4OID, TEXTOID, INT8OID, TEXTOID, TEXTOID, INT8OID, TEXTARRAYOID, INT8OID}
};

/* A product's bucket count, by its primary key. */
static EsKeyLookup product_buckets_by_id = {
	"products", "id", 1, {"stock_buckets"}
};

static EsPlan stock_effect_v10_plan = {
	"WITH s AS (UPDATE elfsofa.stock_levels SET on_hand = on_hand + $3, reserved = reserved + $4, updated_at = now() "
	"           WHERE product_id = $1 AND location = $2 RETURNING on_hand - reserved AS available, reserved), "
	"l AS (INSERT INTO elfsofa.stock_ledger (product_id, location, delta_on_hand, delta_reserved, reason, order_id, actor, note) "
	"      SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM s) "
	"SELECT available, reserved FROM s",
	8, {INT8OID, TEXTOID, INT4OID, INT4OID, TEXTOID, INT8OID, TEXTOID, TEXTOID}
};

/* Every bucket of one location, locked in bucket order. */
static EsPlan stock_rows_plan = {
	"SELECT bucket, reserved FROM elfsofa.stock_levels WHERE product_id = $1 AND location = $2 "
	"ORDER BY bucket FOR UPDATE",
	2, {INT8OID, TEXTOID}
};

/* One bucket's share of a change that no single bucket could take. */
static EsPlan bucket_effect_plan = {
	"UPDATE elfsofa.stock_levels SET on_hand = on_hand + $4, reserved = reserved + $5, updated_at = now() "
	"WHERE product_id = $1 AND location = $2 AND bucket = $3",
	5, {INT8OID, TEXTOID, INT2OID, INT4OID, INT4OID}
};

static EsPlan ledger_plan = {
	"INSERT INTO elfsofa.stock_ledger (product_id, location, delta_on_hand, delta_reserved, reason, order_id, actor, note) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
	8, {INT8OID, TEXTOID, INT4OID, INT4OID, TEXTOID, INT8OID, TEXTOID, TEXTOID}
};

/*
 * stock_apply_ledgered runs stock_effect_plan (v, n: its first 8 arguments):
 * bucket 0 takes the change when it can.  For a product that is not hot its
 * ledger row stands in for the UPDATE's audit row: it gets an audit id and
 * the audit facts (base/request.h) and the audit trigger is told to skip the
 * UPDATE.  True when the row took the change; *hot is false when the
 * product is known to have one row per location.
 */
static bool
stock_apply_ledgered(int64 product_id, Datum *v, char *n, bool *hot)
{
	Datum		buckets;
	bool		bnull;
	bool		ledgered;
	EsAuditStamp st = {0};
	char	   *facts[3];
	int			dims[1] = {3};
	int			lbs[1] = {1};
	Datum		fd[3];
	bool		fnull[3];

	*hot = !(es_key_lookup(&product_buckets_by_id, Int64GetDatum(product_id), &buckets, &bnull) &&
			 !bnull && DatumGetInt16(buckets) <= 1);
	ledgered = es_audit_stamp != NULL && !*hot;
	n[8] = n[9] = n[10] = 'n';
	if (!ledgered)
	{
		es_exec(&stock_effect_plan, v, n, false, 0);
		return SPI_processed == 1;
	}
	es_audit_stamp(&st);
	facts[0] = st.db_user;
	facts[1] = st.actor_role;
	facts[2] = st.application_name;
	for (int i = 0; i < 3; i++)
	{
		fnull[i] = facts[i] == NULL;
		fd[i] = fnull[i] ? (Datum) 0 : CStringGetTextDatum(facts[i]);
	}
	v[8] = Int64GetDatum(st.id);
	v[9] = PointerGetDatum(construct_md_array(fd, fnull, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	v[10] = Int64GetDatum(st.txid);
	n[8] = n[9] = n[10] = ' ';
	es_audit_stock_in_ledger = product_id;
	PG_TRY();
	{
		es_exec(&stock_effect_plan, v, n, false, 0);
	}
	PG_FINALLY();
	{
		es_audit_stock_in_ledger = 0;
	}
	PG_END_TRY();
	return SPI_processed == 1;
}

/*
 * es_stock_apply changes one location's stock by (d_on_hand, d_reserved) and
 * writes its ledger row (reason, order, actor, note): the one way other areas
 * change stock (cancel, ship, return, expiry).  Bucket 0 takes it when it can
 * (always, for a product that is not hot); otherwise a release or a shipment
 * is spread over the location's buckets, all locked in bucket order (bucket
 * 0, perhaps held already, first), which are then evened out.  Sets
 * *available and *reserved to the location's after the change; false
 * when there is no stock row for (product_id, location).  SPI must be
 * connected.
 */
bool
es_stock_apply(int64 product_id, const char *location, int32 d_on_hand, int32 d_reserved,
			   const char *reason, int64 order_id, const char *actor, const char *note,
			   int32 *available, int32 *reserved)
{
	Datum		v[11];
	char		n[11] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', 'n', 'n', 'n'};
	bool		isnull;
	int			nrows;
	int16	   *bucket;
	int32	   *rsv;
	int32		need = -d_reserved;
	int32		h,
				r;
	bool		hot;

	v[0] = Int64GetDatum(product_id);
	v[1] = CStringGetTextDatum(location);
	v[2] = Int32GetDatum(d_on_hand);
	v[3] = Int32GetDatum(d_reserved);
	v[4] = CStringGetTextDatum(reason);
	v[5] = Int64GetDatum(order_id);
	v[6] = CStringGetTextDatum(actor);
	if (note)
		v[7] = CStringGetTextDatum(note);
	else
		n[7] = 'n';
	if (!es_stock_has_buckets())
	{
		es_exec(&stock_effect_v10_plan, v, n, false, 0);
		if (SPI_processed != 1)
			return false;
		es_stock_returned(available, reserved);
		return true;
	}
	if (stock_apply_ledgered(product_id, v, n, &hot))
	{
		es_stock_returned(available, reserved);
		if (hot)
			es_stock_other_buckets(product_id, location, 0, available, reserved);
		return true;
	}

	es_exec(&stock_rows_plan, v, NULL, false, 0);
	nrows = (int) SPI_processed;
	if (nrows == 0)
		return false;
	bucket = palloc(sizeof(int16) * nrows);
	rsv = palloc(sizeof(int32) * nrows);
	for (int i = 0; i < nrows; i++)
	{
		bucket[i] = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		rsv[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	for (int i = 0; i < nrows; i++)
	{
		/* a release (0, -q) or a shipment (-q, -q): each bucket gives up what it holds reserved */
		bool		spread = need > 0 && (d_on_hand == 0 || d_on_hand == d_reserved);
		int32		take = spread ? Min(rsv[i], need) : 0;
		int32		dh = spread ? (d_on_hand == 0 ? 0 : -take) : d_on_hand;
		int32		dr = spread ? -take : d_reserved;
		Datum		bv[5] = {v[0], v[1], Int16GetDatum(bucket[i]), Int32GetDatum(dh), Int32GetDatum(dr)};

		/* any other change goes to the first bucket, more than is reserved to the last: their checks refuse it */
		if (spread && i == nrows - 1)
		{
			dr = -need;
			dh = d_on_hand == 0 ? 0 : -need;
			bv[3] = Int32GetDatum(dh);
			bv[4] = Int32GetDatum(dr);
		}
		if (dh == 0 && dr == 0)
			continue;
		es_exec(&bucket_effect_plan, bv, NULL, false, 0);
		if (!spread)
			break;
		need += dr;
		if (need == 0)
			break;
	}
	es_exec(&ledger_plan, v, n, false, 0);
	es_stock_even_out(product_id, location, &h, &r);
	*available = h - r;
	*reserved = r;
	return true;
}

void
es_stock_returned(int32 *available, int32 *reserved)
{
	HeapTuple	t = SPI_tuptable->vals[0];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	bool		isnull;

	*available = DatumGetInt32(SPI_getbinval(t, desc, 1, &isnull));
	*reserved = DatumGetInt32(SPI_getbinval(t, desc, 2, &isnull));
}

/*
 * elfsofa.adjust_stock(sku, delta, location, note): a counted correction of
 * one location's on-hand stock (shrinkage, damage, a miscount), never below
 * what open orders hold reserved.  The location's rows are locked in bucket
 * order; the new totals go to bucket 0 and, for a hot product, are spread
 * over its buckets again.  One ledger row (reason adjust, through
 * ledger_plan), one inventory.updated event; returns the new on-hand count.
 */
static EsPlan adjust_product_plan = {
	"SELECT id, stock_buckets, low_stock_threshold FROM elfsofa.products WHERE sku = $1",
	1, {TEXTOID}
};
static EsPlan adjust_product_v10_plan = {
	"SELECT id, 1::smallint, low_stock_threshold FROM elfsofa.products WHERE sku = $1",
	1, {TEXTOID}
};
static EsPlan adjust_lock_plan = {
	"SELECT on_hand, reserved FROM elfsofa.stock_levels WHERE product_id = $1 AND location = $2 "
	"ORDER BY bucket FOR UPDATE",
	2, {INT8OID, TEXTOID}
};
static EsPlan adjust_lock_v10_plan = {
	"SELECT on_hand, reserved FROM elfsofa.stock_levels WHERE product_id = $1 AND location = $2 FOR UPDATE",
	2, {INT8OID, TEXTOID}
};
static EsPlan adjust_set_plan = {
	"UPDATE elfsofa.stock_levels SET on_hand = CASE WHEN bucket = 0 THEN $3 ELSE 0 END, "
	"       reserved = CASE WHEN bucket = 0 THEN $4 ELSE 0 END, updated_at = now() "
	"WHERE product_id = $1 AND location = $2",
	4, {INT8OID, TEXTOID, INT4OID, INT4OID}
};
static EsPlan adjust_set_v10_plan = {
	"UPDATE elfsofa.stock_levels SET on_hand = $3, reserved = $4, updated_at = now() "
	"WHERE product_id = $1 AND location = $2",
	4, {INT8OID, TEXTOID, INT4OID, INT4OID}
};

Datum
elfsofa_adjust_stock(PG_FUNCTION_ARGS)
{
	char	   *sku = es_require_text(fcinfo, 0, "sku", 64);
	int32		delta;
	char	   *location = PG_ARGISNULL(2) ? "main" : es_require_text(fcinfo, 2, "location", 32);
	char	   *note = es_optional_text(fcinfo, 3, "note", ES_MAX_TEXT_LEN);
	bool		v10;
	bool		isnull;
	int64		product_id;
	int16		buckets;
	int32		threshold;
	int64		h = 0;
	int64		r = 0;
	int32		on_hand;
	int32		reserved;

	es_arg_not_null(fcinfo, 1, "delta");
	delta = PG_GETARG_INT32(1);
	if (delta == 0 || delta < -ES_MAX_QUANTITY || delta > ES_MAX_QUANTITY)
		es_invalid_arg(psprintf("delta must be between -%d and %d and not 0", ES_MAX_QUANTITY, ES_MAX_QUANTITY),
					   psprintf("Argument \"delta\" was %d.", delta), NULL);
	es_check_location(location, "location");

	SPI_connect();
	v10 = !es_stock_has_buckets();
	{
		Datum		s = CStringGetTextDatum(sku);

		es_exec(v10 ? &adjust_product_v10_plan : &adjust_product_plan, &s, NULL, false, 0);
	}
	if (SPI_processed == 0)
		unknown_sku(sku);
	product_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	buckets = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	threshold = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	{
		Datum		la[2] = {Int64GetDatum(product_id), CStringGetTextDatum(location)};

		es_exec(v10 ? &adjust_lock_v10_plan : &adjust_lock_plan, la, NULL, false, 0);
	}
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ES_ERRCODE_NOT_FOUND),
				 errmsg("no stock at location"),
				 errdetail("sku \"%s\" has no stock row at location \"%s\".", sku, location),
				 errhint("elfsofa.restock creates it.")));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		h += DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		r += DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	if (h + delta < r)
		ereport(ERROR,
				(errcode(ES_ERRCODE_CONFLICT),
				 errmsg("insufficient stock"),
				 errdetail("sku \"%s\" has %lld on hand at location \"%s\", %lld of them reserved; an adjustment of %d would leave fewer than reserved.",
						   sku, (long long) h, location, (long long) r, delta)));
	if (h + delta > PG_INT32_MAX)
		es_invalid_arg("stock would overflow",
					   psprintf("sku \"%s\" has %lld on hand at location \"%s\"; argument \"delta\" was %d.",
								sku, (long long) h, location, delta), NULL);
	on_hand = (int32) (h + delta);
	reserved = (int32) r;
	{
		Datum		v[4] = {Int64GetDatum(product_id), CStringGetTextDatum(location), Int32GetDatum(on_hand),
		Int32GetDatum(reserved)};
		/* the ledger row as es_stock_apply writes one: no order */
		Datum		lv[8] = {v[0], v[1], Int32GetDatum(delta), Int32GetDatum(0), CStringGetTextDatum("adjust"),
		(Datum) 0, CStringGetTextDatum(es_actor()), note ? CStringGetTextDatum(note) : (Datum) 0};
		char		ln[8] = {' ', ' ', ' ', ' ', ' ', 'n', ' ', note ? ' ' : 'n'};

		es_exec(v10 ? &adjust_set_v10_plan : &adjust_set_plan, v, NULL, false, 0);
		if (buckets > 1 && !v10)
			es_stock_even_out(product_id, location, &on_hand, &reserved);
		es_exec(&ledger_plan, lv, ln, false, 0);
	}
	if (es_stock_change_listener)
		es_stock_change_listener(sku, location, on_hand, reserved, delta, 0, "adjust", threshold);
	SPI_finish();

	PG_RETURN_INT32(on_hand);
}
