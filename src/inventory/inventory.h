/*
 * inventory.h — the inventory area: stock levels and the stock ledger (owns stock_levels, stock_ledger).
 */
#ifndef ES_INVENTORY_H
#define ES_INVENTORY_H

#include "postgres.h"

#include "base/args.h"
#include "base/compat.h"
#include "base/errcodes.h"
#include "base/jsonb.h"
#include "base/keylookup.h"
#include "base/request.h"
#include "base/spi.h"

/*
 * Units of one SKU taken from one location: one order line.  An automatic
 * allocation (no location asked for) starts as "all from main" and may be
 * split over several locations when main is short.
 */
typedef struct EsStockAlloc
{
	int			item;			/* the caller's index of the SKU */
	int64		product_id;
	const char *sku;			/* for messages */
	char	   *location;
	int32		qty;
	int32		available_after;	/* on_hand - reserved at the location after the reservation */
	int32		reserved_after; /* reserved at the location after it (on_hand is their sum) */
	bool		automatic;
	int			buckets;		/* products.stock_buckets: > 1 for a hot product */
	int16		ledger_bucket;	/* set by es_stock_reserve: the one stock row (bucket) the
								 * reservation went to, whose ledger row then stands in for
								 * its audit row; -1 when it was audited itself */
} EsStockAlloc;

/* in reserve.c: an order's allocations reserved in the global lock order */
extern void es_stock_reserve(EsStockAlloc **allocs, int *nallocs, int maxallocs);

/*
 * in stock.c: told of a stock change inventory made itself (restock,
 * adjust_stock), with the location's totals after it and the product's
 * low-stock threshold (-1: none to check); SPI is connected.  The events area
 * announces it (inventory.updated, and inventory.low_stock when available
 * fell below the threshold); src/init.c connects the two, which sit side by
 * side.
 */
typedef void (*EsStockChangeListener) (const char *sku, const char *location, int32 on_hand,
									   int32 reserved, int32 delta_on_hand, int32 delta_reserved,
									   const char *reason, int32 threshold);
extern EsStockChangeListener es_stock_change_listener;

/* in stock.c: one stock row changed and its ledger row written together */
extern bool es_stock_apply(int64 product_id, const char *location, int32 d_on_hand, int32 d_reserved,
						   const char *reason, int64 order_id, const char *actor, const char *note,
						   int32 *available, int32 *reserved);

/*
 * in stock.c: the (available, reserved) of the changed row, from the first
 * row of the last statement (its first two columns).
 */
extern void es_stock_returned(int32 *available, int32 *reserved);

/*
 * in buckets.c: hot products, whose stock at a location is split over
 * bucket rows 0..n-1 of stock_levels (a location's stock is their sum).
 * es_hot_reserve takes al->qty from one bucket without waiting behind other
 * buyers (false when no bucket can give it without a full look: the caller
 * then locks every bucket); es_stock_even_out spreads a location's free
 * units evenly over its bucket rows, all of which the caller has locked, and
 * puts all its reserved units on bucket 0 (where releases look first).
 */
extern bool es_stock_has_buckets(void);
extern bool es_hot_reserve(const EsStockAlloc *al, int32 *available_after, int32 *reserved_after,
						   int16 *bucket);
extern void es_stock_even_out(int64 product_id, const char *location, int32 *on_hand, int32 *reserved);

/*
 * in buckets.c: adds to *available and *reserved those of the location's
 * bucket rows other than bucket (a change to one bucket row reports the
 * location's stock).
 */
extern void es_stock_other_buckets(int64 product_id, const char *location, int16 bucket,
								   int32 *available, int32 *reserved);

/*
 * Reasons a ledger row gives.  process_order writes its "reserve" rows in its
 * own one writing statement, for speed: the one documented exception to
 * "only the inventory area writes stock_levels and stock_ledger".
 */
#define ES_LEDGER_RESERVE	"reserve"

#endif							/* ES_INVENTORY_H */
