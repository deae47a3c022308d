/*
 * init.c — the module's start: _PG_init and nothing else.
 *
 * Each area defines its own settings and callbacks in its es_<area>_init();
 * they run here base first, then the areas in layer order.  The order matters
 * for the hooks: audit's ProcessUtility hook is installed before the leaf
 * writers' (es_leafwriter_init), so it runs first: it checks a TRUNCATE of
 * audit_log, then the leaf writers close their open partitions, then the
 * statement runs.
 */
#include "elfsofa.h"

#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	es_request_init();
	es_ops_init();
	es_orders_init();

	es_leafwriter_init();
	es_events_init();
	es_partitions_init();
	es_ratelimit_init();
	es_audit_init();

	ES_MARK_GUC_PREFIX_RESERVED("elfsofa");
}
