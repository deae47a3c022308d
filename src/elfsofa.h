/*
 * elfsofa.h — shared declarations for the elfsofa extension: error codes from
 * DESIGN.md, the cached-plan helper, actor lookup, and version compatibility.
 *
 * Version-specific #if PG_VERSION_NUM blocks live here and nowhere else.
 */
#ifndef ELFSOFA_H
#define ELFSOFA_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#if PG_VERSION_NUM < 140000
#error "elfsofa needs PostgreSQL 14 or later"
#endif

#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/* Business SQLSTATEs: PostgREST maps PTxyz to HTTP status xyz. */
#define ES_ERRCODE_NOT_FOUND		MAKE_SQLSTATE('P','T','4','0','4')
#define ES_ERRCODE_CONFLICT			MAKE_SQLSTATE('P','T','4','0','9')
#define ES_ERRCODE_UNPROCESSABLE	MAKE_SQLSTATE('P','T','4','2','2')
#define ES_ERRCODE_RATE_LIMITED		MAKE_SQLSTATE('P','T','4','2','9')

/* Upper bounds that make a value "absurd" rather than merely large. */
#define ES_MAX_QUANTITY		100000
#define ES_MAX_TEXT_LEN		1000

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
	Oid			argtypes[16];
	SPIPlanPtr	plan;
	bool		generic;		/* always run the generic plan (never replan per call) */
} EsPlan;

/* Returns the prepared plan, preparing it on first use; SPI must be connected. */
extern SPIPlanPtr es_plan(EsPlan *p);

/* Runs a cached plan and raises an internal error on SPI failure. */
extern int	es_exec(EsPlan *p, Datum *values, const char *nulls, bool read_only, long count);

/* The acting user: JWT sub, else elfsofa.actor, else current_user (palloc'd). */
extern char *es_actor(void);

/* JWT claims of the current request (request.jwt.claims) as Jsonb, or NULL. */
extern Jsonb *es_jwt_claims(void);

/* Text value of a top-level string key in a jsonb object, or NULL. */
extern char *es_jsonb_get_text(Jsonb *jb, const char *key);

/* Validation helpers: raise 22023 naming the argument. */
extern char *es_require_text(FunctionCallInfo fcinfo, int argno, const char *argname, int maxlen);
extern int32 es_require_quantity(FunctionCallInfo fcinfo, int argno, const char *argname);
extern void es_check_location(const char *location, const char *argname);

/*
 * events.c: append an event to the outbox in the current transaction and
 * return its id.  SPI must be connected.  data may be NULL ('{}').
 */
extern int64 es_emit_event(const char *topic, const char *key, Jsonb *data);

/*
 * events.c: only the outbox row (es_emit_event without the topic check and
 * without es_event_written), for callers that emit several events and then
 * call es_event_written for each.  Needs no SPI.
 */
extern int64 es_outbox_write(const char *topic, const char *key, Jsonb *data);
/* n of them at once (one heap multi-insert); their ids go to ids[]. */
extern void es_outbox_write_many(int n, const char *const *topics, const char *const *keys,
								 Jsonb *const *data, int64 *ids);

/*
 * audit.c: installs the hook that refuses TRUNCATE of audit_log partitions and
 * the hooks that write deferred audit index entries before any query runs.
 */
extern void es_audit_init(void);
/* orders.c: the orders area's settings */
extern void es_orders_init(void);

/* audit.c: ExecInsertIndexTuples gained "onlySummarizing" in PostgreSQL 16. */
#if PG_VERSION_NUM >= 160000
#define ES_EXEC_INSERT_INDEX_TUPLES(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL, false)
#else
#define ES_EXEC_INSERT_INDEX_TUPLES(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL)
#endif

/* index_beginscan gained an instrumentation argument in PostgreSQL 18. */
#if PG_VERSION_NUM >= 180000
#define ES_INDEX_BEGINSCAN(rel, irel, snap, nkeys) index_beginscan((rel), (irel), (snap), NULL, (nkeys), 0)
#else
#define ES_INDEX_BEGINSCAN(rel, irel, snap, nkeys) index_beginscan((rel), (irel), (snap), (nkeys), 0)
#endif

/* audit.c: _hash_doinsert gained "sorted" in PostgreSQL 16. */
#if PG_VERSION_NUM >= 160000
#define ES_HASH_DOINSERT(index, itup, heap) _hash_doinsert((index), (itup), (heap), false)
#else
#define ES_HASH_DOINSERT(index, itup, heap) _hash_doinsert((index), (itup), (heap))
#endif

/*
 * elfsofa.c: jsonb building for a fixed set of keys: the pairs are collected in place,
 * sorted once in jsonb's key order and converted once (no JsonbParseState,
 * no qsort), for the objects built on every order.  Keys must be distinct.
 * Start with an EsJo whose n is 0; es_jo_value makes a nested value (it
 * points into o, which must outlive the conversion).
 */
#define ES_JO_MAXPAIRS 16
typedef struct EsJo
{
	int			n;
	JsonbPair	pairs[ES_JO_MAXPAIRS];
} EsJo;
extern void es_jbv_str(JsonbValue *v, const char *val);
extern void es_jbv_num(JsonbValue *v, struct NumericData *val);
extern void es_jo_keyval(EsJo *o, const char *key, int keylen, const JsonbValue *val);
extern void es_jo_val(EsJo *o, const char *key, const JsonbValue *val);
extern void es_jo_str(EsJo *o, const char *key, const char *val);
extern void es_jo_num(EsJo *o, const char *key, struct NumericData *val);
extern void es_jo_int(EsJo *o, const char *key, int64 val);
extern void es_jo_value(EsJo *o, JsonbValue *out);
extern Jsonb *es_jo_finish(EsJo *o);
/* elfsofa.c: jsonb as text, exactly as jsonb_out writes it (faster, for event payloads). */
extern char *es_jsonb_text(Jsonb *jb);
/* s[0..len) as a JSON string, quoted and escaped as jsonb_out writes it */
extern void es_json_string(StringInfo out, const char *s, int len);

/*
 * leafwriter.c: direct inserts into the current partition of a
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

extern void es_leafwriter_init(void);
extern bool es_leaf_open(EsLeafWriter *w, Oid rootid, TimestampTz ts);
extern int	es_leaf_index(Relation root, TimestampTz ts);
extern void es_leaf_insert(EsLeafWriter *w, Datum *values, bool *nulls);
extern void es_leaf_insert_many(EsLeafWriter *w, int n, Datum *values, bool *nulls);
extern void es_leaf_close(EsLeafWriter *w);
extern void es_leaf_invalidate(EsLeafWriter *w, Oid relid);
extern void es_leaf_forget(EsLeafWriter *w);

/*
 * orders.c: the customer a request acts for.  given is the customer id text
 * from the request (NULL when omitted: then the customer whose auth_user_id is
 * the JWT sub).  A JWT sub acting on another customer's id is 42501 unless the
 * outer database role is privileged (superuser, BYPASSRLS, or member of
 * service_role).  22023 on a malformed id (DETAIL names argpath), PT404 on an
 * unknown customer.  Returns a uuid Datum palloc'd in the current context;
 * SPI must be connected.
 */
extern Datum es_caller_customer(const char *given, const char *argpath);
extern bool es_role_is_privileged(void);
extern bool es_parse_uuid(const char *s, pg_uuid_t *out);

/*
 * Change events (events.c, publisher.c, changes.c, notifications.c).
 * NOTIFY payloads must stay below BLCKSZ - NAMEDATALEN - 128 bytes.
 */
#define ES_EVENTS_CHANNEL		"elfsofa_events"
#define ES_CACHE_CHANNEL		"elfsofa_cache"
#define ES_NOTIFY_MAX_PAYLOAD	(BLCKSZ - NAMEDATALEN - 128)
extern void es_events_init(void);
extern void es_publisher_init(void);
extern void es_notifications_init(void);
/*
 * After an outbox row was written (es_emit_event, or es_outbox_write):
 * wake-up, or NOTIFY and queue.  SPI must be connected; SPI_tuptable and
 * SPI_processed are left as they were.
 */
extern void es_event_written(int64 id, const char *topic, const char *key, Jsonb *data);
extern char *es_event_payload(int64 id, const char *topic, const char *key, const char *data_json);
/* Runs the events-after query into SPI_tuptable; returns how many leading rows are safe. */
extern int	es_fetch_events(int64 after_id, int max_events);
extern bool es_publisher_serves_this_database(void);
extern void es_check_topic(const char *topic);
extern void es_queue_notifications(int64 event_id, const char *topic, const char *key, Jsonb *data);
extern void es_queue_batch_begin(int capacity);
extern void es_queue_batch_flush(void);
extern void es_publisher_wake(void);
extern bool es_guc_emit_events;
extern char *es_guc_database;

/*
 * partitions.c / archive.c / schedule.c (issue 6): GUCs of partition
 * maintenance, registered from _PG_init.
 */
extern void es_partitions_init(void);

#if PG_VERSION_NUM >= 160000
#define es_rel_ownercheck(relid, roleid) object_ownercheck(RelationRelationId, (relid), (roleid))
#else
#define es_rel_ownercheck(relid, roleid) pg_class_ownercheck((relid), (roleid))
#endif

/*
 * security.c and ratelimit.c (issue 7).  es_current_customer_id() maps the
 * JWT sub to customers.id (false when there is none); privilege is
 * es_role_is_privileged() above, never a JWT claim.
 */
extern bool es_jwt_sub_uuid(pg_uuid_t *out);
extern bool es_current_customer_id(pg_uuid_t *out);
extern void es_ratelimit_init(void);
#if PG_VERSION_NUM >= 170000
#define ES_MY_LXID (MyProc->vxid.lxid)
#else
#define ES_MY_LXID (MyProc->lxid)
#endif
/* PG15+ asks for shared memory in shmem_request_hook; 14 asks in _PG_init. */
#define ES_HAVE_SHMEM_REQUEST_HOOK (PG_VERSION_NUM >= 150000)

/*
 * ops (health.c, logging.c, carts.c, crm.c, analytics.c): settings defined by
 * es_ops_init() from _PG_init, and a jsonb-object check shared by log/CRM.
 */
extern void es_ops_init(void);
extern void es_require_object(Jsonb *jb, const char *argname, int maxbytes);
extern int	es_guc_recommend_window_days;
extern int	es_guc_restock_lookback_days;
extern int	es_guc_cart_abandon_hours;

/* Opens a regclass argument, 42P01 naming the argument when it names no relation. */
#include "utils/rel.h"
#include "storage/lockdefs.h"
extern Relation es_open_relation_arg(Oid relid, const char *argname, LOCKMODE lockmode);

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

/* GUC values */
extern char *es_guc_actor;

#endif							/* ELFSOFA_H */
