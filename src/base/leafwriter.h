/*
 * leafwriter.h — direct inserts into the current partition of a time-partitioned table (in leafwriter.c).
 */
#ifndef ES_LEAFWRITER_H
#define ES_LEAFWRITER_H

#include "postgres.h"

#include "base/compat.h"

#include "datatype/timestamp.h"
#include "nodes/plannodes.h"
#include "utils/rel.h"

/*
 * Direct inserts into the current partition of a
 * time-partitioned elfsofa table, kept open for the rest of the transaction
 * (events, audit_log), or into a plain table (then the table itself; the
 * publisher's notification queue rows).  The caller fills relname, ncols and
 * colnames once, calls es_leaf_open() for the partition covering a time
 * (false when no partition does), es_leaf_insert() with values in colnames
 * order (they must satisfy the table's constraints: nothing is checked, no
 * trigger fires) or es_leaf_insert_many() with n rows of them (one heap
 * multi-insert: one WAL record and one buffer lock per page, not per row), es_leaf_close() before commit, es_leaf_invalidate() from a
 * relcache callback (then stale: close and reopen before the next row) and
 * es_leaf_forget() at transaction end.  Every utility statement other than
 * BEGIN/SAVEPOINT/COMMIT and the like closes the open writers first (an open
 * partition could not be truncated or altered).
 *
 * Optional hooks, for a writer that keeps some index entries for later (the
 * audit log's hash indexes): opened runs once the partition and its indexes
 * are open (in TopTransactionContext, under the top transaction's resource
 * owner) and may take indexes out of rri; inserted runs after each row's heap
 * and index inserts, while its per-tuple memory is still valid; closing runs
 * first thing in es_leaf_close().
 */
#define ES_LEAF_MAXCOLS 16
typedef struct EsLeafWriter
{
	const char *relname;		/* table in schema elfsofa, for messages */
	int			ncols;
	const char *const *colnames;	/* the columns callers fill, in their order */
	Oid			rootid;
	Oid			leafid;
	bool		stale;
	Relation	leaf;			/* NULL while closed */
	struct ResultRelInfo *rri;
	struct EState *estate;
	struct TupleTableSlot *slot;
	struct TupleTableSlot **mslots; /* es_leaf_insert_many's, made on first use */
	int			nmslots;
	AttrNumber	map[ES_LEAF_MAXCOLS];	/* colnames[i] -> partition attnum */
	bool		registered;		/* known to the utility hook */
	/*
	 * The partition found last time and the range it covers, kept across
	 * transactions (cleared by es_leaf_invalidate): while a time falls in it,
	 * the next open locks only the partition, not the parent.
	 */
	bool		cache_valid;
	Oid			cache_rootid;
	Oid			cache_leafid;
	TimestampTz cache_lo;		/* inclusive */
	TimestampTz cache_hi;		/* exclusive */
	Oid			map_leafid;		/* the partition map was made for (cleared by its invalidations) */
	void		(*opened) (struct EsLeafWriter *w);
	void		(*inserted) (struct EsLeafWriter *w, struct TupleTableSlot *slot);
	void		(*closing) (struct EsLeafWriter *w);
} EsLeafWriter;

extern void es_leaf_close_for_utility(PlannedStmt *pstmt);
extern bool es_leaf_open(EsLeafWriter *w, Oid rootid, TimestampTz ts);
extern int	es_leaf_index(Relation root, TimestampTz ts);
extern void es_leaf_insert(EsLeafWriter *w, Datum *values, bool *nulls);
extern void es_leaf_insert_many(EsLeafWriter *w, int n, Datum *values, bool *nulls);
extern void es_leaf_close(EsLeafWriter *w);
extern void es_leaf_invalidate(EsLeafWriter *w, Oid relid);
extern void es_leaf_forget(EsLeafWriter *w);

#endif							/* ES_LEAFWRITER_H */
