/*
 * ops.h — the ops area: health, metrics, logs, carts, CRM, analytics (owns system_logs, carts, cart_items, interactions).
 */
#ifndef ES_OPS_H
#define ES_OPS_H

#include "postgres.h"

#include "base/args.h"
#include "base/compat.h"
#include "base/errcodes.h"
#include "base/jsonb.h"
#include "base/keylookup.h"
#include "base/request.h"
#include "base/spi.h"

/*
 * ops (health.c, logging.c, carts.c, crm.c, analytics.c): settings defined by
 * es_ops_init() from _PG_init.
 */
extern void es_ops_init(void);
extern int	es_guc_recommend_window_days;
extern int	es_guc_restock_lookback_days;
extern int	es_guc_cart_abandon_hours;

#endif							/* ES_OPS_H */
