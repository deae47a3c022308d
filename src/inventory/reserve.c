/*
 * reserve.c — process_order's stock step: the allocations of an order
 * reserved in one global lock order, so concurrent orders never deadlock,
 * each only when enough is available under the row's lock (PT409 with what
 * is there otherwise).  The ledger rows of these reservations are written by
 * the order's one writing statement (orders/orders.c), for speed.
 */
#include "inventory/inventory.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

/*
 * Reserve on bucket $4 (0: the one row of a product that is not hot): only
 * succeeds when enough is available on the locked, current row.
 */
static EsPlan reserve_plan = {
	"UPDATE elfsofa.stock_levels SET reserved = reserved + $3, updated_at = now() "
	"WHERE product_id = $1 AND location = $2 AND bucket = $4 AND on_hand - reserved >= $3 "
	"RETURNING on_hand - reserved, reserved",
	4, {INT8OID, TEXTOID, INT4OID, INT2OID}, .generic = true
};

/* The same three in a database still at the 1.0 schema (no bucket column). */
static EsPlan reserve_v10_plan = {
	"UPDATE elfsofa.stock_levels SET reserved = reserved + $3, updated_at = now() "
	"WHERE product_id = $1 AND location = $2 AND on_hand - reserved >= $3 AND $4 = 0 "
	"RETURNING on_hand - reserved, reserved",
	4, {INT8OID, TEXTOID, INT4OID, INT2OID}, .generic = true
};
static EsPlan lock_one_v10_plan = {
	"SELECT location, 0::smallint, on_hand - reserved, reserved FROM elfsofa.stock_levels WHERE product_id = $1 AND location = $2 FOR UPDATE",
	2, {INT8OID, TEXTOID}, .generic = true
};
static EsPlan lock_all_v10_plan = {
	"SELECT location, 0::smallint, on_hand - reserved, reserved FROM elfsofa.stock_levels WHERE product_id = $1 "
	"ORDER BY location <> 'main', location COLLATE \"C\" FOR UPDATE",
	1, {INT8OID}, .generic = true
};
static bool v10;

/* Every bucket of one location, locked in bucket order, for an exact decision. */
static EsPlan lock_one_plan = {
	"SELECT location, bucket, on_hand - reserved, reserved FROM elfsofa.stock_levels WHERE product_id = $1 AND location = $2 "
	"ORDER BY bucket FOR UPDATE",
	2, {INT8OID, TEXTOID}, .generic = true
};

/* Every location (and bucket) of one product, locked in the global order: main, then the others by name. */
static EsPlan lock_all_plan = {
	"SELECT location, bucket, on_hand - reserved, reserved FROM elfsofa.stock_levels WHERE product_id = $1 "
	"ORDER BY location <> 'main', location COLLATE \"C\", bucket FOR UPDATE",
	1, {INT8OID}, .generic = true
};

/*
 * The global stock-row lock order: product id, then location with "main"
 * first and the others by name in byte order (location_cmp; in SQL,
 * COLLATE "C": the database's own collation may order '_' and '-' otherwise,
 * and two orders of one set of rows can deadlock).  main comes first because
 * the fast path's conditional UPDATE of the main row may keep that row locked
 * even when it fails (READ COMMITTED re-check after a concurrent update locks
 * the newest version before testing the condition), and the spill-over that
 * follows must only lock rows after it.  It is also the order stock is taken
 * in, so lock order and allocation order are one rule.
 */
static int
location_cmp(const char *x, const char *y)
{
	bool		xm = strcmp(x, "main") == 0;
	bool		ym = strcmp(y, "main") == 0;

	if (xm != ym)
		return xm ? -1 : 1;
	return strcmp(x, y);
}

/* qsort order of allocations: the global lock order */
static int
lock_order_cmp(const void *a, const void *b)
{
	const EsStockAlloc *x = a;
	const EsStockAlloc *y = b;

	if (x->product_id != y->product_id)
		return x->product_id < y->product_id ? -1 : 1;
	return location_cmp(x->location, y->location);
}

/*
 * Appends a reserved line with the location's availability after it, and the
 * one bucket row it went to when its ledger row stands in for that row's
 * audit row (-1: audited).
 */
static void
push_reserved(EsStockAlloc **lines, int *nlines, int *maxlines, const EsStockAlloc *al, int32 available_after,
			  int32 reserved_after, int16 ledger_bucket)
{
	if (*nlines == *maxlines)
	{
		*maxlines *= 2;
		*lines = repalloc(*lines, sizeof(EsStockAlloc) * *maxlines);
	}
	(*lines)[*nlines] = *al;
	(*lines)[*nlines].available_after = available_after;
	(*lines)[*nlines].ledger_bucket = ledger_bucket;
	(*lines)[*nlines].reserved_after = reserved_after;
	(*nlines)++;
}

/* One locked stock row: a bucket of a location, with what it has free. */
typedef struct LockedRow
{
	char	   *location;
	int16		bucket;
	int32		avail;
	int32		rsv;
} LockedRow;

/* Reads the rows a lock plan returned (location, bucket, available, reserved). */
static LockedRow *
locked_rows(int *n)
{
	bool		isnull;
	LockedRow  *rows;

	*n = (int) SPI_processed;
	rows = palloc(sizeof(LockedRow) * Max(*n, 1));
	for (int r = 0; r < *n; r++)
	{
		HeapTuple	t = SPI_tuptable->vals[r];

		rows[r].location = SPI_getvalue(t, SPI_tuptable->tupdesc, 1);
		rows[r].bucket = DatumGetInt16(SPI_getbinval(t, SPI_tuptable->tupdesc, 2, &isnull));
		rows[r].avail = Max(DatumGetInt32(SPI_getbinval(t, SPI_tuptable->tupdesc, 3, &isnull)), 0);
		rows[r].rsv = DatumGetInt32(SPI_getbinval(t, SPI_tuptable->tupdesc, 4, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	return rows;
}

/*
 * Whether the order's stock_ledger row of a reservation through reserve_row,
 * written with an audit id and the audit facts (orders/orders.c), stands in
 * for the audit row of its UPDATE: for a product that is not hot (a hot one's
 * own bucket reservation, buckets.c, is the other case), never at the 1.0
 * schema.  One rule for the audit trigger's skip and the lines' ledger_bucket.
 */
static bool
ledger_stands_in(const EsStockAlloc *al)
{
	return !v10 && al->buckets <= 1;
}

/*
 * reserve_row runs the conditional reserve UPDATE of one stock row (args as
 * reserve_plan's), telling the audit trigger to skip it when its ledger row
 * stands in.
 */
static void
reserve_row(const EsStockAlloc *al, Datum *args)
{
	if (!ledger_stands_in(al))
	{
		es_exec(v10 ? &reserve_v10_plan : &reserve_plan, args, NULL, false, 0);
		return;
	}
	es_audit_stock_in_ledger = al->product_id;
	PG_TRY();
	{
		es_exec(&reserve_plan, args, NULL, false, 0);
	}
	PG_FINALLY();
	{
		es_audit_stock_in_ledger = 0;
	}
	PG_END_TRY();
}

/*
 * take_from: reserves qty at one location from its locked rows (rows[from]
 * on, while they are of that location), bucket by bucket; evens the buckets
 * out after when there are several.
 */
static void
take_from(const EsStockAlloc *al, const char *location, LockedRow *rows, int nrows, int from, int32 qty)
{
	int32		need = qty;
	int			nb = 0;

	for (int r = from; r < nrows && strcmp(rows[r].location, location) == 0; r++)
	{
		int32		take = Min(rows[r].avail, need);
		Datum		a[4] = {Int64GetDatum(al->product_id), CStringGetTextDatum(location), Int32GetDatum(take),
		Int16GetDatum(rows[r].bucket)};

		nb++;
		if (take == 0)
			continue;
		need -= take;
		reserve_row(al, a);
		if (SPI_processed != 1)
			elog(ERROR, "elfsofa: locked stock row of sku \"%s\" at \"%s\" refused %d units",
				 al->sku, location, take);
		rows[r].avail -= take;
	}
	if (need != 0)
		elog(ERROR, "elfsofa: locked stock of sku \"%s\" at \"%s\" is %d units short", al->sku, location, need);
	if (nb > 1 && !v10)
	{
		int32		h,
					rsv;

		es_stock_even_out(al->product_id, location, &h, &rsv);
	}
}

/*
 * es_stock_reserve reserves the *nallocs allocations of *allocs (maxallocs
 * long): sorted into the global lock order first, then each one taken from
 * its named location, or for an automatic one from main and, when main is
 * short, the other locations by name.  *allocs and *nallocs become the lines
 * actually taken, each with the location's availability and reservations after it.  SPI must be
 * connected.
 */
void
es_stock_reserve(EsStockAlloc **allocs, int *nallocs, int maxallocs)
{
	v10 = !es_stock_has_buckets();
	qsort(*allocs, *nallocs, sizeof(EsStockAlloc), lock_order_cmp);
	/*
	 * Reserve stock in the global lock order (product id, then main, then the
	 * other locations by name; see es_location_cmp), so concurrent orders
	 * never deadlock.  A placed (or automatic-from-main) allocation is one
	 * conditional UPDATE; only when that fails do we lock rows explicitly:
	 * the placed row itself, or for an automatic one every location of the
	 * product in that order (main, possibly already held, comes first).
	 */
	{
		EsStockAlloc	   *lines = palloc0(sizeof(EsStockAlloc) * maxallocs);
		int			nlines = 0;
		int			maxlines = maxallocs;

		for (int a = 0; a < *nallocs; a++)
		{
			EsStockAlloc	   *al = &(*allocs)[a];
			Datum		args[4] = {Int64GetDatum(al->product_id), CStringGetTextDatum(al->location), Int32GetDatum(al->qty), Int16GetDatum(0)};
			int			nloc;
			char	  **loc;
			int32	   *avail;
			int32	   *rsv;
			int64		total_avail = 0;
			int32		need;
			int			nrows;
			int		   *first;
			LockedRow  *rows;

			/* hot product: one bucket, without queueing behind other buyers (buckets.c) */
			if (al->buckets > 1 && !v10)
			{
				int32		after;
				int32		rsv_after;
				int16		bucket;

				if (es_hot_reserve(al, &after, &rsv_after, &bucket))
				{
					push_reserved(&lines, &nlines, &maxlines, al, after, rsv_after, bucket);
					continue;
				}
			}
			else
			{
				/* fast path: the whole quantity from the named (or main) row */
				reserve_row(al, args);
				if (SPI_processed == 1)
				{
					int32		after;
					int32		rsv_after;

					es_stock_returned(&after, &rsv_after);
					push_reserved(&lines, &nlines, &maxlines, al, after, rsv_after, ledger_stands_in(al) ? 0 : -1);
					continue;
				}
			}

			if (!al->automatic)
			{
				/* a placed allocation: lock its rows, then decide on what they hold now */
				int32		now_avail = 0;
				int32		now_rsv = 0;
				int			nrows;
				LockedRow  *rows;

				es_exec(v10 ? &lock_one_v10_plan : &lock_one_plan, args, NULL, false, 0);
				rows = locked_rows(&nrows);
				for (int r = 0; r < nrows; r++)
				{
					now_avail += rows[r].avail;
					now_rsv += rows[r].rsv;
				}
				if (now_avail < al->qty)
					ereport(ERROR,
							(errcode(ES_ERRCODE_CONFLICT),
							 errmsg("insufficient stock"),
							 errdetail("sku \"%s\" has %d available at location \"%s\"; the order needs %d.",
									   al->sku, Max(now_avail, 0), al->location, al->qty)));
				take_from(al, al->location, rows, nrows, 0, al->qty);
				push_reserved(&lines, &nlines, &maxlines, al, now_avail - al->qty, now_rsv + al->qty,
							  ledger_stands_in(al) ? 0 : -1);
				continue;
			}

			/* automatic and main is short: lock every location of the sku, then split */
			es_exec(v10 ? &lock_all_v10_plan : &lock_all_plan, args, NULL, false, 0);
			rows = locked_rows(&nrows);
			/* per location: its buckets summed (rows come grouped by location) */
			loc = palloc(sizeof(char *) * Max(nrows, 1));
			avail = palloc(sizeof(int32) * Max(nrows, 1));
			rsv = palloc(sizeof(int32) * Max(nrows, 1));
			first = palloc(sizeof(int) * Max(nrows, 1));
			nloc = 0;
			for (int r = 0; r < nrows; r++)
			{
				if (nloc == 0 || strcmp(loc[nloc - 1], rows[r].location) != 0)
				{
					loc[nloc] = rows[r].location;
					avail[nloc] = 0;
					rsv[nloc] = 0;
					first[nloc++] = r;
				}
				avail[nloc - 1] += rows[r].avail;
				rsv[nloc - 1] += rows[r].rsv;
				total_avail += rows[r].avail;
			}
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
									   al->sku, main_avail, al->qty)));
				appendStringInfo(&per, "main %d", main_avail);
				for (int r = 0; r < nloc; r++)
					if (strcmp(loc[r], "main") != 0 && avail[r] > 0)
						appendStringInfo(&per, ", %s %d", loc[r], avail[r]);
				ereport(ERROR,
						(errcode(ES_ERRCODE_CONFLICT),
						 errmsg("insufficient stock"),
						 errdetail("sku \"%s\" has %lld available over all locations (%s); the order needs %d.",
								   al->sku, (long long) total_avail, per.data, al->qty),
						 errhint("Without inventory_updates units come from main first, then the other locations by name.")));
			}

			/* rows arrive main first, then by name: take from each in turn */
			need = al->qty;
			for (int r = 0; r < nloc && need > 0; r++)
			{
				int32		take = Min(avail[r], need);

				if (take == 0)
					continue;
				need -= take;
				take_from(al, loc[r], rows, nrows, first[r], take);
				{
					EsStockAlloc		part = {.item = al->item, .product_id = al->product_id, .sku = al->sku, .location = loc[r], .qty = take, .automatic = true, .buckets = al->buckets};

					push_reserved(&lines, &nlines, &maxlines, &part, avail[r] - take, rsv[r] + take,
								  ledger_stands_in(al) ? 0 : -1);
				}
			}
			Assert(need == 0);
		}
		*allocs = lines;
		*nallocs = nlines;
	}
}
