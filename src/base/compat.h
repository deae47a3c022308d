/*
 * compat.h — every difference between the PostgreSQL versions elfsofa builds
 * against (14 to 18), as a macro or an inline wrapper.  No other file tests
 * PG_VERSION_NUM (test/scripts/00_layers.sh checks it).
 */
#ifndef ES_COMPAT_H
#define ES_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 140000
#error "elfsofa needs PostgreSQL 14 or later"
#endif

#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/*
 * The context of a setting that only matters with shared_preload_libraries
 * (shared memory, background workers).  PostgreSQL refuses, with FATAL, a
 * PGC_POSTMASTER setting defined after startup, so a module loaded later
 * (CREATE EXTENSION without the preload) defines it for superusers instead.
 * (Not a version difference, but as much a rule of fitting in.)
 */
#define ES_PGC_PRELOADED \
	(process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SUSET)

/* MarkGUCPrefixReserved replaced EmitWarningsOnPlaceholders in PostgreSQL 15. */
#if PG_VERSION_NUM >= 150000
#define ES_MARK_GUC_PREFIX_RESERVED(prefix) MarkGUCPrefixReserved(prefix)
#else
#define ES_MARK_GUC_PREFIX_RESERVED(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

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

#if PG_VERSION_NUM >= 160000
#define es_rel_ownercheck(relid, roleid) object_ownercheck(RelationRelationId, (relid), (roleid))
#else
#define es_rel_ownercheck(relid, roleid) pg_class_ownercheck((relid), (roleid))
#endif

#if PG_VERSION_NUM >= 170000
#define ES_MY_LXID (MyProc->vxid.lxid)
#else
#define ES_MY_LXID (MyProc->lxid)
#endif
/* The index of this backend's PGPROC (MyProcNumber since PostgreSQL 17). */
#if PG_VERSION_NUM >= 170000
#define ES_MY_PROCNO ((int) MyProcNumber)
#else
#define ES_MY_PROCNO (MyProc->pgprocno)
#endif

/* PG15+ asks for shared memory in shmem_request_hook; 14 asks in _PG_init. */
#define ES_HAVE_SHMEM_REQUEST_HOOK (PG_VERSION_NUM >= 150000)

/* A_Const holds its value in a union of nodes since PostgreSQL 15. */
#if PG_VERSION_NUM >= 150000
#define ES_SET_STRING_CONST(c, str) \
	do { (c)->val.sval.type = T_String; (c)->val.sval.sval = (str); (c)->isnull = false; } while (0)
#else
#define ES_SET_STRING_CONST(c, str) \
	do { (c)->val.type = T_String; (c)->val.val.str = (str); } while (0)
#endif

/* SPI_commit starts the next transaction itself since PostgreSQL 15. */
#if PG_VERSION_NUM >= 150000
#define ES_SPI_START_TRANSACTION() ((void) 0)
#else
#define ES_SPI_START_TRANSACTION() SPI_start_transaction()
#endif

#endif							/* ES_COMPAT_H */
