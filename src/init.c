/*
 * init.c — the module's start: _PG_init and nothing else.
 *
 * Each area defines its own settings and callbacks in its es_<area>_init();
 * they run here base first, then the areas in layer order.  The hooks come
 * last (src/hooks.c installs all of them, in the order stated there): the
 * rate limiter's shared memory is sized by one of its settings.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "audit/audit.h"
#include "base/compat.h"
#include "base/request.h"
#include "events/events.h"
#include "inventory/inventory.h"
#include "hooks.h"
#include "ops/ops.h"
#include "orders/orders.h"
#include "partitions/partitions.h"
#include "security/security.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	es_request_init();
	es_events_init();
	es_audit_init();
	es_partitions_init();
	es_ratelimit_init();
	es_orders_init();
	es_health_init();
	es_analytics_init();
	es_carts_init();

	/* areas side by side, connected from the top */
	es_stock_change_listener = es_events_stock_changed;

	es_hooks_install();
	ES_MARK_GUC_PREFIX_RESERVED("elfsofa");
}
