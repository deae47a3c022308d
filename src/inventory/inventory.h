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
	int32		available_after;	/* on_hand - reserved after the reservation */
	bool		automatic;
} EsStockAlloc;

/* in reserve.c: an order's allocations reserved in the global lock order */
extern void es_stock_reserve(EsStockAlloc **allocs, int *nallocs, int maxallocs);

/*
 * in stock.c: told of a stock change inventory made itself (restock), with
 * the row after it; SPI is connected.  The events area announces it
 * (inventory.updated); src/init.c connects the two, which sit side by side.
 */
typedef void (*EsStockChangeListener) (const char *sku, const char *location, int32 on_hand,
									   int32 reserved, int32 delta_on_hand, int32 delta_reserved,
									   const char *reason);
extern EsStockChangeListener es_stock_change_listener;

/* in stock.c: one stock row changed and its ledger row written together */
extern bool es_stock_apply(int64 product_id, const char *location, int32 d_on_hand, int32 d_reserved,
						   const char *reason, int64 order_id, const char *actor, const char *note,
						   int32 *available);

/*
 * Reasons a ledger row gives.  process_order writes its "reserve" rows in its
 * own one writing statement, for speed: the one documented exception to
 * "only the inventory area writes stock_levels and stock_ledger".
 */
#define ES_LEDGER_RESERVE	"reserve"

#endif							/* ES_INVENTORY_H */
