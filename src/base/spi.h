/*
 * spi.h — statements prepared once per backend and kept (in spi.c).
 */
#ifndef ES_SPI_H
#define ES_SPI_H

#include "postgres.h"

#include "base/compat.h"

#include "executor/spi.h"

/*
 * A statement prepared once per backend and kept (SPI_keepplan).  The plan
 * cache revalidates it when the tables it reads change, so a DROP/CREATE
 * EXTENSION in the same session still works.  Declare one as a static
 * variable next to the code that runs it.  Hot statements set .generic: the
 * plan cache otherwise keeps building a custom plan on every call when it
 * judges the generic one (e.g. with array parameters) worse; a statement
 * marked generic must be written so its generic plan is good (checked by
 * EXPLAIN with plan_cache_mode = force_generic_plan).
 */
typedef struct EsPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[20];
	SPIPlanPtr	plan;
	bool		generic;		/* always run the generic plan (never replan per call) */
} EsPlan;

/* Returns the prepared plan, preparing it on first use; SPI must be connected. */
extern SPIPlanPtr es_plan(EsPlan *p);

/* Runs a cached plan and raises an internal error on SPI failure. */
extern int	es_exec(EsPlan *p, Datum *values, const char *nulls, bool read_only, long count);

#endif							/* ES_SPI_H */
