/*
 * watermark.c — which event ids are final, precisely.
 *
 * Event ids come from a sequence before commit, so id 12 can commit while
 * id 11 is still in flight.  events_since() and the publisher hand out
 * events in id order without a gap, so they stop below the smallest id that
 * a transaction in flight may still commit: the watermark.
 *
 * With elfsofa in shared_preload_libraries, every backend has one slot in
 * shared memory (indexed by its PGPROC number) holding the smallest event id
 * its transaction holds.  Before a transaction takes its first id, its slot
 * says "pending" (1, which holds everything back); once it has the id, the
 * slot holds it.  The slot is cleared at commit or abort, after PostgreSQL
 * has made the transaction's outcome visible.  A reader reads the sequence's
 * last value L, then every slot, then takes its snapshot: every id below
 * min(smallest slot, L + 1) belongs to a transaction that ended before the
 * snapshot (so its events are visible, or were rolled back).  A transaction
 * that took no event id delays nothing, however long it stays open.
 * (Reading L from the sequence, not from a counter of ours, keeps this right
 * after setval or RESTART moves the sequence back.)
 *
 * Two-phase commit: at PREPARE the slot is cleared, and the prepared
 * transaction's xid stands in for it (events.xid_horizon: an event waits while
 * a prepared transaction with a smaller xid is open).  That rule needs no
 * shared memory, so it also holds after a restart with prepared transactions.
 *
 * Without the preload (or on a standby, or for a reader whose snapshot is
 * older than the call, REPEATABLE READ and up) events.c falls back to the
 * xid rule for every transaction: correct, but any transaction of the
 * database holding an xid delays events taken after it started.
 *
 * No lock: atomics and barriers only.  A slot is a pg_atomic_uint64 (0: the
 * backend holds no id).
 */
#include "events/events.h"

#include "access/transam.h"
#include "access/twophase.h"
#include "commands/sequence.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "postmaster/autovacuum.h"
#include "postmaster/postmaster.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

typedef struct EsWatermarkShared
{
	pg_atomic_uint32 broken;	/* 1: some backend could not record; use the xid rule */
	uint32		nslots;
	pg_atomic_uint64 slots[FLEXIBLE_ARRAY_MEMBER];
} EsWatermarkShared;

static EsWatermarkShared *es_wm = NULL;

/* A slot whose backend is taking its first id (ids start at 1: holds every one back). */
#define ES_WM_PENDING	UINT64CONST(1)

/* This backend's transaction has written its slot. */
static bool wm_held = false;
static bool wm_exit_registered = false;

/* Every PGPROC there can be (MaxBackends is not yet known in PostgreSQL 14's _PG_init). */
static uint32
es_watermark_nslots(void)
{
	return (uint32) (MaxConnections + autovacuum_max_workers + 1 + max_worker_processes +
					 max_wal_senders + NUM_AUXILIARY_PROCS + max_prepared_xacts + 8);
}

static Size
es_watermark_size(void)
{
	return add_size(offsetof(EsWatermarkShared, slots),
					mul_size(es_watermark_nslots(), sizeof(pg_atomic_uint64)));
}

/* Asks for the slots (src/hooks.c, when preloaded). */
void
es_watermark_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(es_watermark_size()));
}

/* Creates (or attaches to) the slots (src/hooks.c); all zero after every (re)start. */
void
es_watermark_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	es_wm = ShmemInitStruct("elfsofa event watermark", es_watermark_size(), &found);
	if (!found)
	{
		es_wm->nslots = es_watermark_nslots();
		pg_atomic_init_u32(&es_wm->broken, 0);
		for (uint32 i = 0; i < es_wm->nslots; i++)
			pg_atomic_init_u64(&es_wm->slots[i], 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Whether readers may use the slots (else the xid rule). */
bool
es_watermark_precise(void)
{
	return es_wm != NULL && pg_atomic_read_u32(&es_wm->broken) == 0;
}

static void
es_watermark_clear(void)
{
	if (wm_held)
	{
		/* the transaction's outcome is visible before the slot says so */
		pg_memory_barrier();
		pg_atomic_write_u64(&es_wm->slots[ES_MY_PROCNO], 0);
		wm_held = false;
	}
}

/* A backend that exits in the middle of a transaction must not hold everyone back. */
static void
es_watermark_on_exit(int code, Datum arg)
{
	es_watermark_clear();
}

/*
 * Takes the next event id from seqid (as nextval, with its permission check
 * when asked), recorded in this backend's slot.  The caller has assigned the
 * transaction's xid already (the xid rule needs it).
 */
int64
es_event_nextval(Oid seqid, bool check_permissions)
{
	int64		id;
	int			procno = ES_MY_PROCNO;

	if (es_wm == NULL)
		return nextval_internal(seqid, check_permissions);
	if (procno < 0 || (uint32) procno >= es_wm->nslots)
	{
		/* cannot happen with the sizing above; stay correct if it does */
		pg_atomic_write_u32(&es_wm->broken, 1);
		return nextval_internal(seqid, check_permissions);
	}
	if (!wm_held)
	{
		if (!wm_exit_registered)
		{
			on_shmem_exit(es_watermark_on_exit, (Datum) 0);
			wm_exit_registered = true;
		}
		pg_atomic_write_u64(&es_wm->slots[procno], ES_WM_PENDING);
		wm_held = true;
		/* "pending" is visible before the sequence hands out our id */
		pg_memory_barrier();
		id = nextval_internal(seqid, check_permissions);
		pg_atomic_write_u64(&es_wm->slots[procno], (uint64) id);
	}
	else
	{
		id = nextval_internal(seqid, check_permissions);
		/* only if the sequence was moved back meanwhile */
		if ((uint64) id < pg_atomic_read_u64(&es_wm->slots[procno]))
			pg_atomic_write_u64(&es_wm->slots[procno], (uint64) id);
	}
	return id;
}

/* At commit, abort and PREPARE (events.c's transaction callback). */
void
es_watermark_xact_end(void)
{
	es_watermark_clear();
}

/*
 * The watermark: every event id below it belongs to a transaction that has
 * ended.  Read it before taking the snapshot the events are read with.
 * seqid is the outbox's sequence; its last value is read with the rights of
 * owner (the reader may have none on the sequence).
 */
int64
es_watermark_read(Oid seqid, Oid owner)
{
	Oid			save_userid;
	int			save_sec;
	Datum		last;
	bool		isnull;
	uint64		w;
	LOCAL_FCINFO(fcinfo, 1);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(seqid);
	fcinfo->args[0].isnull = false;
	last = pg_sequence_last_value(fcinfo);
	isnull = fcinfo->isnull;
	SetUserIdAndSecContext(save_userid, save_sec);
	/* never called (or set back with is_called false): no id is out yet */
	w = isnull ? 1 : (uint64) DatumGetInt64(last) + 1;

	pg_memory_barrier();
	for (uint32 i = 0; i < es_wm->nslots; i++)
	{
		uint64		s = pg_atomic_read_u64(&es_wm->slots[i]);

		if (s != 0 && s < w)
			w = s;
	}
	return (int64) w;
}

/*
 * The smallest xid of a prepared transaction of this database, as a full
 * xid (InvalidFullTransactionId when there is none).  Prepared transactions
 * sit in PGPROCs of their own, with no process.
 */
FullTransactionId
es_watermark_prepared_xid(void)
{
	FullTransactionId next;
	TransactionId oldest = InvalidTransactionId;

	if (max_prepared_xacts == 0)
		return InvalidFullTransactionId;
	/* (they follow the allProcCount entries of allProcs, which leave them out) */
	for (uint32 i = 0; i < ProcGlobal->allProcCount + (uint32) max_prepared_xacts; i++)
	{
		PGPROC	   *proc = &ProcGlobal->allProcs[i];
		TransactionId xid = *((volatile TransactionId *) &proc->xid);

		/*
		 * A finished one keeps its xid in the PGPROC until the PGPROC is
		 * reused: ask the proc array (quick for an old xid).
		 */
		if (*((volatile int *) &proc->pid) == 0 && TransactionIdIsNormal(xid) &&
			*((volatile Oid *) &proc->databaseId) == MyDatabaseId &&
			(!TransactionIdIsValid(oldest) || TransactionIdPrecedes(xid, oldest)) &&
			TransactionIdIsInProgress(xid))
			oldest = xid;
	}
	if (!TransactionIdIsValid(oldest))
		return InvalidFullTransactionId;
	next = ReadNextFullTransactionId();
	return FullTransactionIdFromU64(U64FromFullTransactionId(next) -
									(uint32) (XidFromFullTransactionId(next) - oldest));
}
