/*
 * audit.h — the audit area (owns audit_log): the per-relation metadata, the
 * per-transaction state, and the functions one file of the area calls in
 * another, grouped by the file that defines them.
 */
#ifndef ES_AUDIT_H
#define ES_AUDIT_H

#include "postgres.h"

#include "base/args.h"
#include "base/compat.h"
#include "base/errcodes.h"
#include "base/jsonb.h"
#include "base/keylookup.h"
#include "base/leafwriter.h"
#include "base/request.h"
#include "base/spi.h"

#include "datatype/timestamp.h"
#include "nodes/execnodes.h"
#include "nodes/plannodes.h"
#include "utils/reltrigger.h"

/* in audit_trigger.c: what src/hooks.c calls around utility statements and queries */
extern List *es_audit_utility_before(PlannedStmt *pstmt);
extern void es_audit_utility_after(List *truncated);
extern void es_audit_executor_start(void);
/* in audit_trigger.c: the audit settings, from _PG_init */
extern void es_audit_init(void);


#define AUDIT_ROW_TRIGGER		"elfsofa_audit"
#define AUDIT_TRUNCATE_TRIGGER	"elfsofa_audit_truncate"

/*
 * A row-trigger argument that is an option, not an excluded column: INSERT
 * rows carry the key only (new_data NULL), for tables whose rows stay in the
 * table and whose every later change is audited; audit_history() reads the
 * first version back from the table (elfsofa.audit_row_image).
 */
#define AUDIT_ARG_INSERT_KEY	"@insert_key"

/* ---------------------------------------------------------------------
 * Per-relation metadata cache
 * --------------------------------------------------------------------- */

/* How a column's value becomes JSON (mirrors to_jsonb's categories). */
typedef enum JsonCat
{
	JC_BOOL,
	JC_INT,
	JC_NUMERIC,
	JC_FLOAT,
	JC_DATETIME,
	JC_JSONB,
	JC_TEXT,
	JC_OUTPUT,					/* type output function, as a JSON string */
	JC_TO_JSONB					/* arrays, composites, json, user types: to_jsonb() */
} JsonCat;

typedef struct AuditCol
{
	bool		skip;			/* dropped or excluded */
	char	   *name;
	Datum		nametext;		/* name as text, for changed_columns */
	int			namelen;
	Oid			basetype;
	int16		typlen;
	bool		typbyval;
	JsonCat		cat;
	FmgrInfo	fn;				/* output function, or to_jsonb with fn_expr set */
} AuditCol;

typedef struct AuditRel
{
	Oid			relid;			/* hash key: the relation the trigger fired on */
	bool		valid;
	Oid			tgoid;			/* trigger this entry was built for */
	Oid			defrelid;		/* table auditing was enabled on (parent of a partition) */
	MemoryContext cxt;
	Datum		schema_name;	/* text */
	Datum		table_name;		/* text */
	int			natts;
	AuditCol   *cols;
	int			nkeyorder;
	int		   *keyorder;		/* audited columns in jsonb key order (length, then bytes) */
	int			npk;
	AttrNumber *pk;				/* 1-based attnums of the key */
	int		   *pkorder;		/* 0-based key columns in jsonb key order */
	bool		insert_key_only;	/* AUDIT_ARG_INSERT_KEY: INSERT rows without new_data */
} AuditRel;

/* ---------------------------------------------------------------------
 * Per-transaction state: who is acting, and the open audit_log partition
 * --------------------------------------------------------------------- */

/* Logical columns of audit_log, in the order we fill them. */
enum
{
	AL_ID, AL_LOGGED_AT, AL_TXID, AL_ACTOR, AL_ACTOR_ROLE, AL_DB_USER, AL_APPNAME,
	AL_SCHEMA, AL_TABLE, AL_OPERATION, AL_PK, AL_OLD_PK, AL_OLD_DATA, AL_NEW_DATA,
	AL_CHANGED, AL_NCOLS
};

enum
{
	OP_INSERT, OP_UPDATE, OP_DELETE, OP_TRUNCATE
};

/*
 * Hash index entries of audit rows are not written row by row: the key's hash
 * and the heap TID are kept and inserted in bucket order before anything can
 * look at the index (audit_flush_index).  Audit keys arrive in random order,
 * and a random bucket page per row (cache misses on the buffer table, the page
 * and its item array) was half the cost of auditing a row.  Index entries are
 * not transactional, so writing them later, in whatever subtransaction is
 * current, is sound; only the heap row belongs to the writer's subtransaction.
 */
#define AUDIT_MAX_DEFERRED	4
#define AUDIT_MAX_PENDING	(1 << 20)

typedef struct AuditDeferred
{
	Relation	index;			/* a hash index of the open partition */
	ExprState  *pred;			/* its predicate when partial, else NULL */
	AttrNumber	attno;			/* the partition column it is on */
} AuditDeferred;

typedef struct AuditPending
{
	uint32		hashkey;
	uint32		bucket;			/* filled in when flushing: the sort key */
	ItemPointerData tid;
	uint16		which;			/* entry of audit_xact.deferred */
	SubTransactionId subid;		/* forgotten if this subtransaction aborts */
} AuditPending;

typedef struct AuditXact
{
	bool		active;			/* set up in this transaction */
	bool		closing;		/* past PRE_COMMIT: do not keep relations open */
	/* facts and the settings they were computed from */
	char	   *claims_raw;
	char	   *actor_guc;
	char	   *appname_raw;
	Oid			userid;
	int64		txid;
	TimestampTz ts;
	Datum		actor;
	Datum		actor_role;
	bool		actor_role_null;
	Datum		db_user;
	Datum		appname;
	bool		appname_null;
	Datum		op_text[4];		/* INSERT, UPDATE, DELETE, TRUNCATE */
	/* the audit_log partition for ts is audit_writer (src/leafwriter.c) */
	Oid			rootid;
	Oid			seqid;
	/* hash index entries not yet written (see AuditPending) */
	int			ndeferred;
	AuditDeferred deferred[AUDIT_MAX_DEFERRED];
	AuditPending *pending;		/* in TopTransactionContext */
	int			npending;
	int			maxpending;
	bool		flushing;		/* set while writing them: an error left some unwritten */
} AuditXact;

/* in audit_meta.c */
extern void audit_meta_register(void);
extern Bitmapset *audit_key_columns(Relation rel);
extern AuditRel *audit_get_rel(Relation rel, Trigger *tg);
extern char **audit_excluded_names(Trigger *tg, Oid defrelid, int *n);

/* in audit_rowjson.c */
extern Jsonb *audit_json(AuditRel *e, const int *order, int n, Datum *values, bool *nulls);
extern Jsonb *audit_row_json(AuditRel *e, Datum *values, bool *nulls);
extern Jsonb *audit_key_json(AuditRel *e, Datum *values, bool *nulls);

/* in audit_trigger.c */
extern bool audit_replica_writes;
extern bool audit_quiet(void);
extern void audit_table_event(Oid relid, const char *operation, const char *data);

/* in audit_admin.c */
extern bool audit_admin_running(void);
extern void audit_enable_inherited(Oid child, Oid parent);

/* in audit_write.c */
extern AuditXact audit_xact;	/* this transaction's state */
extern void audit_register_callbacks(void);
extern void audit_writer_invalidate(Oid relid);
extern void audit_refresh_facts(void);
extern void audit_flush_index(void);
extern void audit_insert(Datum *vals, bool *nulls);
extern void audit_stamp(EsAuditStamp *stamp);

#endif							/* ES_AUDIT_H */
