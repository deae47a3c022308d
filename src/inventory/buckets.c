/*
 * buckets.c — hot products: a product marked hot (set_stock_buckets) has its
 * stock at each location split over bucket rows 0..n-1 of stock_levels, so
 * that concurrent buyers of it lock different rows instead of queueing on one
 * row lock until commit.  A location's stock is the sum of its buckets; the
 * ledger stays per location and is untouched by moves between buckets.
 *
 * Lock rules (no deadlock): rows are locked in the global order (product,
 * main first then locations by name, bucket).  A buyer that has not found its
 * units in one bucket tries inside a subtransaction, so a failed try (whose
 * UPDATE may have kept a row locked after a concurrent change) releases what
 * it locked before the caller locks every bucket in order.  Bucket rows are
 * only created or removed by set_stock_buckets, under an EXCLUSIVE lock on
 * stock_levels, so a statement that locks "every bucket" sees them all.
 */
#include "inventory/inventory.h"

#include "access/genam.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "parser/parse_relation.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(elfsofa_set_stock_buckets);

#define ES_MAX_BUCKETS 64

/*
 * One bucket with qty free: the first unlocked one from this backend's
 * bucket ($4) up, read in index order (usually the first row read), then
 * the ones below it; RETURNING the bucket's availability and reservations
 * after, and which bucket it was (es_stock_other_buckets adds the others).
 */
#define HOT_RESERVE(cond, lock) \
	"UPDATE elfsofa.stock_levels s SET reserved = s.reserved + $3, updated_at = now() " \
	"WHERE s.product_id = $1 AND s.location = $2 AND s.on_hand - s.reserved >= $3 AND s.bucket = " \
	"  (SELECT k.bucket FROM elfsofa.stock_levels k " \
	"    WHERE k.product_id = $1 AND k.location = $2 AND " cond " AND k.on_hand - k.reserved >= $3 " \
	"    ORDER BY k.bucket LIMIT 1 " lock ") " \
	"RETURNING s.on_hand - s.reserved, s.reserved, s.bucket"

static EsPlan hot_skip_plan = {
	HOT_RESERVE("k.bucket >= $4", "FOR UPDATE SKIP LOCKED"),
	4, {INT8OID, TEXTOID, INT4OID, INT2OID}, .generic = true
};
static EsPlan hot_skip_below_plan = {
	HOT_RESERVE("k.bucket < $4", "FOR UPDATE SKIP LOCKED"),
	4, {INT8OID, TEXTOID, INT4OID, INT2OID}, .generic = true
};

/*
 * The same, waiting for the first bucket (from $4 on, wrapping round) that
 * had qty free: one statement, since a second one waiting while the first
 * kept a lock could close a circle with a buyer locking every bucket.
 */
static EsPlan hot_wait_plan = {
	"UPDATE elfsofa.stock_levels s SET reserved = s.reserved + $3, updated_at = now() "
	"WHERE s.product_id = $1 AND s.location = $2 AND s.on_hand - s.reserved >= $3 AND s.bucket = "
	"  (SELECT k.bucket FROM elfsofa.stock_levels k "
	"    WHERE k.product_id = $1 AND k.location = $2 AND k.on_hand - k.reserved >= $3 "
	"    ORDER BY (k.bucket + 64 - $4) % 64 LIMIT 1) "
	"RETURNING s.on_hand - s.reserved, s.reserved, s.bucket",
	4, {INT8OID, TEXTOID, INT4OID, INT2OID}, .generic = true
};

/* Every bucket of one location, locked in bucket order. */
static EsPlan lock_buckets_plan = {
	"SELECT bucket, on_hand, reserved FROM elfsofa.stock_levels "
	"WHERE product_id = $1 AND location = $2 ORDER BY bucket FOR UPDATE",
	2, {INT8OID, TEXTOID}
};

/* New contents of some buckets (locked by the caller). */
static EsPlan set_buckets_plan = {
	"UPDATE elfsofa.stock_levels s SET on_hand = u.h, reserved = u.r, updated_at = now() "
	"FROM unnest($3::smallint[], $4::int[], $5::int[]) AS u(b, h, r) "
	"WHERE s.product_id = $1 AND s.location = $2 AND s.bucket = u.b "
	"  AND (s.on_hand::int, s.reserved::int) IS DISTINCT FROM (u.h, u.r)",
	5, {INT8OID, TEXTOID, INT2ARRAYOID, INT4ARRAYOID, INT4ARRAYOID}
};

static EsPlan add_buckets_plan = {
	"INSERT INTO elfsofa.stock_levels (product_id, location, bucket, on_hand, reserved) "
	"SELECT $1, $2, u.b, u.h, u.r FROM unnest($3::smallint[], $4::int[], $5::int[]) AS u(b, h, r) "
	"WHERE NOT EXISTS (SELECT 1 FROM elfsofa.stock_levels s "
	"                   WHERE s.product_id = $1 AND s.location = $2 AND s.bucket = u.b)",
	5, {INT8OID, TEXTOID, INT2ARRAYOID, INT4ARRAYOID, INT4ARRAYOID}
};

static EsPlan drop_buckets_plan = {
	"DELETE FROM elfsofa.stock_levels WHERE product_id = $1 AND location = $2 AND bucket >= $3",
	3, {INT8OID, TEXTOID, INT4OID}
};

/*
 * es_stock_has_buckets: false in a database still at the 1.0 schema (before
 * ALTER EXTENSION UPDATE), whose stock_levels has one row per location and
 * no bucket column; the library then runs the 1.0 statements.
 */
bool
es_stock_has_buckets(void)
{
	Oid			nsp = get_namespace_oid("elfsofa", true);
	Oid			rel = OidIsValid(nsp) ? get_relname_relid("stock_levels", nsp) : InvalidOid;

	return OidIsValid(rel) && get_attnum(rel, "bucket") != InvalidAttrNumber;
}

/*
 * es_stock_other_buckets: a change to one bucket row reports the location's
 * stock, so the location's other bucket rows are added, read through
 * stock_levels' primary key (product_id, location, bucket) with a snapshot
 * taken now (under READ COMMITTED: what has committed, and this
 * transaction's earlier statements; no row locks, and under SERIALIZABLE the
 * predicate locks of any read).  A direct scan, because through SQL (a
 * subquery summing them in the changing statement) this sum was a third of
 * a hot order's CPU: a subplan started and run over up to 63 rows on every
 * order.
 */
void
es_stock_other_buckets(int64 product_id, const char *location, int16 bucket,
					   int32 *available, int32 *reserved)
{
	Oid			relid = get_relname_relid("stock_levels", get_namespace_oid("elfsofa", false));
	Relation	rel;
	Relation	irel;
	Oid			pkey;
	AttrNumber	att_on_hand,
				att_reserved,
				att_bucket;
	ScanKeyData key[2];
	Datum		keyval[2];
	Snapshot	snap;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	int64		avail = *available;
	int64		rsv = *reserved;

	if (!OidIsValid(relid))
		elog(ERROR, "elfsofa: table elfsofa.stock_levels does not exist");
	rel = table_open(relid, AccessShareLock);
	/* (RelationGetPrimaryKeyIndex's arguments differ between versions) */
	list_free(RelationGetIndexList(rel));
	pkey = rel->rd_pkindex;
	if (!OidIsValid(pkey))
		elog(ERROR, "elfsofa: elfsofa.stock_levels has no primary key");
	irel = index_open(pkey, AccessShareLock);
	att_on_hand = attnameAttNum(rel, "on_hand", false);
	att_reserved = attnameAttNum(rel, "reserved", false);
	att_bucket = attnameAttNum(rel, "bucket", false);
	if (irel->rd_index->indnkeyatts < 2 ||
		irel->rd_index->indkey.values[0] != attnameAttNum(rel, "product_id", false) ||
		irel->rd_index->indkey.values[1] != attnameAttNum(rel, "location", false) ||
		irel->rd_opcintype[0] != INT8OID || irel->rd_opcintype[1] != TEXTOID ||
		att_on_hand == InvalidAttrNumber || att_reserved == InvalidAttrNumber || att_bucket == InvalidAttrNumber)
		elog(ERROR, "elfsofa: elfsofa.stock_levels' primary key is not (product_id, location, bucket)");
	keyval[0] = Int64GetDatum(product_id);
	keyval[1] = CStringGetTextDatum(location);
	for (int k = 0; k < 2; k++)
	{
		Oid			eq = get_opfamily_member(irel->rd_opfamily[k], irel->rd_opcintype[k],
											 irel->rd_opcintype[k], BTEqualStrategyNumber);

		if (!OidIsValid(eq))
			elog(ERROR, "elfsofa: no equality operator for column %d of stock_levels' primary key", k + 1);
		ScanKeyEntryInitialize(&key[k], 0, k + 1, BTEqualStrategyNumber, InvalidOid,
							   irel->rd_indcollation[k], get_opcode(eq), keyval[k]);
	}

	snap = RegisterSnapshot(GetTransactionSnapshot());
	scan = ES_INDEX_BEGINSCAN(rel, irel, snap, 2);
	index_rescan(scan, key, 2, NULL, 0);
	slot = table_slot_create(rel, NULL);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		int32		h,
					r;

		if (DatumGetInt16(slot_getattr(slot, att_bucket, &isnull)) == bucket)
			continue;
		h = DatumGetInt32(slot_getattr(slot, att_on_hand, &isnull));
		r = DatumGetInt32(slot_getattr(slot, att_reserved, &isnull));
		avail += (int64) h - r;
		rsv += r;
	}
	ExecDropSingleTupleTableSlot(slot);
	index_endscan(scan);
	UnregisterSnapshot(snap);
	index_close(irel, NoLock);
	table_close(rel, NoLock);
	if (avail < PG_INT32_MIN || avail > PG_INT32_MAX || rsv < PG_INT32_MIN || rsv > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("integer out of range"),
				 errdetail("The stock of product %lld at location \"%s\" does not fit an integer.",
						   (long long) product_id, location)));
	*available = (int32) avail;
	*reserved = (int32) rsv;
}

/*
 * try_in_subxact runs one reserving UPDATE, and when that reserves nothing a
 * second (never one that waits: see hot_wait_plan), in a subtransaction:
 * kept when one reserved a row, rolled back (with any row lock they took)
 * when not.
 */
static bool
try_in_subxact(EsPlan *plan, EsPlan *plan2, Datum *args, int32 *available_after, int32 *reserved_after,
			   int16 *bucket)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		/* the reserved bucket's ledger row stands in for its audit row (base/request.h) */
		es_audit_stock_in_ledger = DatumGetInt64(args[0]);
		es_exec(plan, args, NULL, false, 0);
		if (SPI_processed == 0 && plan2 != NULL)
			es_exec(plan2, args, NULL, false, 0);
		es_audit_stock_in_ledger = 0;
		if (SPI_processed == 1)
		{
			bool		isnull;

			es_stock_returned(available_after, reserved_after);
			*bucket = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
			es_stock_other_buckets(DatumGetInt64(args[0]), TextDatumGetCString(args[1]), *bucket,
								   available_after, reserved_after);
			ok = true;
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		es_audit_stock_in_ledger = 0;
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		ReThrowError(edata);
	}
	PG_END_TRY();
	if (ok)
		ReleaseCurrentSubTransaction();
	else
		RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return ok;
}

/*
 * es_hot_reserve: first a bucket nobody holds (starting at this backend's
 * own, so buyers spread, and in index order, so that one is usually the
 * first row read), then, when every bucket with enough is held, a
 * wait for one of them.  Each try holds no other bucket of this location,
 * and a failed one keeps no lock: the caller's lock-everything fallback
 * still takes the buckets in order.
 */
bool
es_hot_reserve(const EsStockAlloc *al, int32 *available_after, int32 *reserved_after, int16 *bucket)
{
	Datum		args[4] = {Int64GetDatum(al->product_id), CStringGetTextDatum(al->location),
	Int32GetDatum(al->qty), Int16GetDatum((int16) (MyProcPid % Max(al->buckets, 1)))};

	if (try_in_subxact(&hot_skip_plan, &hot_skip_below_plan, args, available_after, reserved_after, bucket))
		return true;
	return try_in_subxact(&hot_wait_plan, NULL, args, available_after, reserved_after, bucket);
}

static Datum
int_array(Datum *d, int n, Oid type)
{
	if (type == INT2OID)
		return PointerGetDatum(construct_array(d, n, INT2OID, 2, true, TYPALIGN_SHORT));
	return PointerGetDatum(construct_array(d, n, INT4OID, 4, true, TYPALIGN_INT));
}

/*
 * rebalance: the buckets of one location become nb rows 0..nb-1 (nb < 0: the
 * rows there are now), all reserved units on bucket 0 and the free ones
 * spread evenly; rows past nb are removed.  Locks the location's buckets in
 * order (a no-op for those the caller holds).  Sets the location's totals.
 */
static void
rebalance(int64 product_id, const char *location, int nb, int32 *on_hand, int32 *reserved)
{
	Datum		la[2] = {Int64GetDatum(product_id), CStringGetTextDatum(location)};
	int			nrows;
	int64		h = 0,
				r = 0,
				freeu;
	int			n;
	Datum	   *b,
			   *hv,
			   *rv;
	bool		isnull;

	es_exec(&lock_buckets_plan, la, NULL, false, 0);
	nrows = (int) SPI_processed;
	n = nb > 0 ? nb : nrows;
	b = palloc(sizeof(Datum) * Max(n, 1));
	hv = palloc(sizeof(Datum) * Max(n, 1));
	rv = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < nrows; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];

		if (nb < 0)
			b[i] = Int16GetDatum(DatumGetInt16(SPI_getbinval(t, SPI_tuptable->tupdesc, 1, &isnull)));
		h += DatumGetInt32(SPI_getbinval(t, SPI_tuptable->tupdesc, 2, &isnull));
		r += DatumGetInt32(SPI_getbinval(t, SPI_tuptable->tupdesc, 3, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	*on_hand = (int32) h;
	*reserved = (int32) r;
	if (nrows == 0 || (nrows == 1 && nb <= 1))
		return;
	freeu = h - r;
	for (int i = 0; i < n; i++)
	{
		int64		f = freeu / n + (i < freeu % n ? 1 : 0);
		int64		ri = i == 0 ? r : 0;

		if (nb > 0)
			b[i] = Int16GetDatum((int16) i);
		hv[i] = Int32GetDatum((int32) (ri + f));
		rv[i] = Int32GetDatum((int32) ri);
	}
	{
		Datum		v[5] = {la[0], la[1], int_array(b, n, INT2OID), int_array(hv, n, INT4OID), int_array(rv, n, INT4OID)};

		es_exec(&set_buckets_plan, v, NULL, false, 0);
		if (nb > 0)
		{
			Datum		dv[3] = {la[0], la[1], Int32GetDatum(nb)};

			es_exec(&add_buckets_plan, v, NULL, false, 0);
			es_exec(&drop_buckets_plan, dv, NULL, false, 0);
		}
	}
}

/* es_stock_even_out: see inventory.h; the caller holds every bucket of the location. */
void
es_stock_even_out(int64 product_id, const char *location, int32 *on_hand, int32 *reserved)
{
	rebalance(product_id, location, -1, on_hand, reserved);
}

static EsPlan mark_hot_plan = {
	"UPDATE elfsofa.products SET stock_buckets = $2, updated_at = now() WHERE sku = $1 RETURNING id",
	2, {TEXTOID, INT2OID}
};

static EsPlan locations_plan = {
	"SELECT DISTINCT location::text COLLATE \"C\", location <> 'main' FROM elfsofa.stock_levels WHERE product_id = $1 "
	"ORDER BY 2, 1",
	1, {INT8OID}
};

static EsPlan lock_stock_table_plan = {
	"LOCK TABLE elfsofa.stock_levels IN EXCLUSIVE MODE", 0, {}
};

/*
 * elfsofa.set_stock_buckets(sku, buckets): marks a product hot (or not) and
 * splits (or merges) its stock rows.  The EXCLUSIVE lock waits for every
 * transaction writing stock and keeps new ones out until commit, so no
 * statement that locks "every bucket" of a location can miss a row made here.
 */
Datum
elfsofa_set_stock_buckets(PG_FUNCTION_ARGS)
{
	char	   *sku = es_require_text(fcinfo, 0, "sku", 64);
	int32		n;
	int64		product_id;
	bool		isnull;
	SPITupleTable *locs;
	uint64		nlocs;

	es_arg_not_null(fcinfo, 1, "buckets");
	n = PG_GETARG_INT32(1);
	if (n < 1 || n > ES_MAX_BUCKETS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("buckets is out of range"),
				 errdetail("Argument \"buckets\" was %d; it must be 1 to %d.", n, ES_MAX_BUCKETS),
				 errhint("1 makes the product's stock one row per location again.")));

	SPI_connect();
	es_exec(&lock_stock_table_plan, NULL, NULL, false, 0);
	{
		Datum		a[2] = {CStringGetTextDatum(sku), Int16GetDatum((int16) n)};

		es_exec(&mark_hot_plan, a, NULL, false, 0);
	}
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ES_ERRCODE_NOT_FOUND),
				 errmsg("unknown sku"),
				 errdetail("No product has sku \"%s\".", sku)));
	product_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	{
		Datum		a[1] = {Int64GetDatum(product_id)};

		es_exec(&locations_plan, a, NULL, false, 0);
	}
	locs = SPI_tuptable;
	nlocs = SPI_processed;
	for (uint64 i = 0; i < nlocs; i++)
	{
		int32		h,
					r;

		rebalance(product_id, SPI_getvalue(locs->vals[i], locs->tupdesc, 1), n, &h, &r);
	}
	SPI_finish();
	PG_RETURN_INT32(n);
}
