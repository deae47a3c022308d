/*
 * partitions.h — the partitions area: partition sets, maintenance, archiving,
 * pg_cron jobs (owns partition_sets); the types the part_*.c files pass each
 * other and the functions they share, grouped by the file that defines them.
 */
#ifndef ES_PARTITIONS_H
#define ES_PARTITIONS_H

#include "postgres.h"

#include "base/args.h"
#include "base/compat.h"
#include "base/errcodes.h"
#include "base/jsonb.h"
#include "base/keylookup.h"
#include "base/request.h"
#include "base/spi.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "nodes/plannodes.h"
#include "utils/palloc.h"
#include "utils/resowner.h"

/*
 * GUCs of partition
 * maintenance, registered from _PG_init.
 */
extern void es_partitions_init(void);

/* A period: n days, n weeks or n months (years are 12n months). */
typedef enum
{
	PU_DAY,
	PU_WEEK,
	PU_MONTH
} PeriodUnit;

/* One registered set as read from partition_sets (leader values resolved). */
typedef struct PartSet
{
	Oid			parent;
	Oid			leader;			/* InvalidOid for a leader itself */
	char	   *control_column;
	Interval   *interval;
	int			premake;
	Interval   *retention;		/* leader's; NULL = keep forever */
	bool		drop;			/* leader's action */
	char	   *time_zone;
	PeriodUnit	unit;
	int			n;
	Oid			keytype;		/* TIMESTAMPTZOID or DATEOID */
} PartSet;

/* A partition's bounds in the column's own domain (µs for timestamptz, days for date). */
typedef struct Bound
{
	Oid			relid;
	bool		is_default;
	int64		lo;				/* PG_INT64_MIN for MINVALUE */
	int64		hi;				/* PG_INT64_MAX for MAXVALUE */
} Bound;

/* One partition to make: name and bounds in the key's own domain. */
typedef struct NewPart
{
	char	   *name;
	char	   *qname;
	int64		lo;
	int64		hi;
} NewPart;

/* The partitions one set lacks; current tells which one is being made (or failed). */
typedef struct NewParts
{
	PartSet    *s;
	char	   *nsp;
	char	   *relname;
	char	   *qparent;
	List	   *parts;			/* of NewPart */
	bool		attach;
	bool		with_default;	/* the parent has a default partition */
	int			current;
} NewParts;

/* in part_period.c */
extern bool part_parse_period(Interval *iv, PeriodUnit *unit, int *n);
extern int32 part_period_start(int32 d, PeriodUnit unit, int n);
extern int32 part_period_next(int32 start, PeriodUnit unit, int n);
extern int64 part_day_to_key(PartSet *s, int32 d);
extern int64 part_cutoff_key(PartSet *s, Interval *minus);
extern int32 part_local_today(PartSet *s);
extern char *part_key_text(Oid keytype, int64 v);
extern char *part_key_literal(Oid keytype, int64 v);
extern char *part_partition_name(const char *base, PartSet *s, int32 start);

extern List *part_read_bounds(Oid parent, Oid keytype);
extern bool part_overlaps(List *bounds, int64 lo, int64 hi);
extern bool part_has_default(List *bounds);
extern Oid	part_check_parent(Oid relid, const char *column);
extern List *part_load_sets(Oid only);
extern void part_resolve_keytype(PartSet *s);

/* in part_ddl.c */
extern ErrorData *part_subxact_abort(MemoryContext oldcxt, ResourceOwner oldowner);
extern void part_run_with_retry(void (*work) (void *), void *arg);
extern void part_make_partitions(List *sets);
extern NewParts *part_plan_ahead(PartSet *s, bool attach);
extern int	part_finish_ahead(NewParts *np, StringInfo out);
extern int	part_create_ahead(PartSet *s, StringInfo out, bool attach);
extern int	part_retire_old(PartSet *s, StringInfo out);

/* in part_maintain.c */
extern int	part_lock_retries;		/* elfsofa.maintenance_lock_retries */

/* in part_restore.c: a restore's statement for an index ATTACH already made (src/hooks.c) */
extern bool es_partitions_restore_skip(PlannedStmt *pstmt);

#endif							/* ES_PARTITIONS_H */
