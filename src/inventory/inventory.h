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

/* Nothing is shared from this area yet: stock changes are its SQL functions. */

#endif							/* ES_INVENTORY_H */
