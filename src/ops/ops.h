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

/* in health.c */
extern void es_health_init(void);

/* in analytics.c */
extern void es_analytics_init(void);
extern int	es_guc_recommend_window_days;
extern int	es_guc_restock_lookback_days;

/* in carts.c */
extern void es_carts_init(void);
extern int	es_guc_cart_abandon_hours;

#endif							/* ES_OPS_H */
