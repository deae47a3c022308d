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
 * The global stock-row lock order: product id, then location with "main"
 * first and the others by name (location_cmp).  main comes first because
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

/* Appends a reserved line; available_after comes from the reserve UPDATE's RETURNING row. */
static void
push_reserved(EsStockAlloc **lines, int *nlines, int *maxlines, const EsStockAlloc *al)
{
	bool		isnull;

	if (*nlines == *maxlines)
	{
		*maxlines *= 2;
		*lines = repalloc(*lines, sizeof(EsStockAlloc) * *maxlines);
	}
	(*lines)[*nlines] = *al;
	(*lines)[*nlines].available_after =
		DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	(*nlines)++;
}

/*
 * es_stock_reserve reserves the *nallocs allocations of *allocs (maxallocs
 * long): sorted into the global lock order first, then each one taken from
 * its named location, or for an automatic one from main and, when main is
 * short, the other locations by name.  *allocs and *nallocs become the lines
 * actually taken, each with the row's availability after it.  SPI must be
 * connected.
 */
void
es_stock_reserve(EsStockAlloc **allocs, int *nallocs, int maxallocs)
{
	bool		isnull;

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
						Datum		args[3] = {Int64GetDatum(al->product_id), CStringGetTextDatum(al->location), Int32GetDatum(al->qty)};
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
									   al->sku, Max(now_avail, 0), al->location, al->qty)));
				es_exec(&reserve_plan, args, NULL, false, 0);
				if (SPI_processed != 1)
					elog(ERROR, "elfsofa: locked stock row of sku \"%s\" at \"%s\" refused %d units",
						 al->sku, al->location, al->qty);
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
				Datum		rargs[3] = {args[0], CStringGetTextDatum(loc[r]), Int32GetDatum(take)};

				if (take == 0)
					continue;
				need -= take;
				es_exec(&reserve_plan, rargs, NULL, false, 0);
				if (SPI_processed != 1)
					elog(ERROR, "elfsofa: locked stock row of sku \"%s\" at \"%s\" refused %d units",
						 al->sku, loc[r], take);
				{
					EsStockAlloc		part = {.item = al->item, .product_id = al->product_id, .sku = al->sku, .location = loc[r], .qty = take, .automatic = true};

					push_reserved(&lines, &nlines, &maxlines, &part);
				}
			}
			Assert(need == 0);
		}
		*allocs = lines;
		*nallocs = nlines;
	}
}
