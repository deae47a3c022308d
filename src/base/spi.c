/*
 * spi.c — statements prepared once per backend and kept (EsPlan).
 *
 * Every area runs its SQL through es_exec: the plan is prepared on first use
 * and revalidated by the plan cache, so the SQL text stays next to its caller.
 */
#include "base/spi.h"

#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "access/relation.h"
#include "utils/lsyscache.h"
#include "access/genam.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "executor/tuptable.h"
#include "parser/parse_relation.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

SPIPlanPtr
es_plan(EsPlan *p)
{
	if (p->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(p->sql, p->nargs, p->argtypes,
											   p->generic ? CURSOR_OPT_GENERIC_PLAN : 0);

		if (plan == NULL)
			elog(ERROR, "elfsofa: could not prepare \"%s\": %s",
				 p->sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "elfsofa: could not keep plan");
		p->plan = plan;
	}
	return p->plan;
}

int
es_exec(EsPlan *p, Datum *values, const char *nulls, bool read_only, long count)
{
	int			rc = SPI_execute_plan(es_plan(p), values, nulls, read_only, count);

	if (rc < 0)
		elog(ERROR, "elfsofa: SPI failed (%s) running \"%s\"",
			 SPI_result_code_string(rc), p->sql);
	return rc;
}
