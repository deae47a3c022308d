/*
 * keylookup.h — direct lookups of one row by a unique key (in keylookup.c).
 */
#ifndef ES_KEYLOOKUP_H
#define ES_KEYLOOKUP_H

#include "postgres.h"

#include "base/compat.h"

#include "utils/rel.h"

/*
 * A direct MVCC lookup of one row of an elfsofa table by a unique one-column
 * index: for hot-path reads where a planned statement costs more than the
 * lookup itself.  Reads with the active snapshot, like a read-only SPI query.
 * The relation, index and column numbers are found by name and cached until
 * a relcache invalidation.  Declare one as a static next to its caller.
 */
typedef struct EsKeyLookup
{
	const char *relname;		/* table in schema elfsofa */
	const char *keycol;			/* column with a unique btree index */
	int			ncols;			/* columns to return */
	const char *cols[8];
	/* cache */
	Oid			relid;
	Oid			indexid;
	RegProcedure eqproc;
	AttrNumber	attnums[8];
} EsKeyLookup;

/* Fills values/nulls (ncols each) from the row whose keycol = key; false when there is none. */
extern bool es_key_lookup(EsKeyLookup *l, Datum key, Datum *values, bool *nulls);

/*
 * The same lookup for many keys in one go: the table, its index and one scan
 * stay open from begin to end (in the current memory context and transaction,
 * with the active snapshot of begin).
 */
typedef struct EsKeyScan
{
	EsKeyLookup *l;
	Relation	rel;
	Relation	irel;
	struct IndexScanDescData *scan;
	struct TupleTableSlot *slot;
	RegProcedure eqproc;
	AttrNumber	attnums[8];
} EsKeyScan;

extern void es_key_scan_begin(EsKeyScan *s, EsKeyLookup *l);
extern bool es_key_scan_get(EsKeyScan *s, Datum key, Datum *values, bool *nulls);
extern void es_key_scan_end(EsKeyScan *s);

#endif							/* ES_KEYLOOKUP_H */
