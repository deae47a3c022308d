/*
 * keylookup.c — direct MVCC lookups of one row of an elfsofa table by a unique
 * one-column index (EsKeyLookup, EsKeyScan), for hot-path reads where a planned
 * statement costs more than the lookup; the relation, index and columns are
 * found by name once and forgotten on a relcache invalidation.
 */
#include "base/keylookup.h"

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

/* ---------------------------------------------------------------------
 * Direct lookups by a unique key (EsKeyLookup, see elfsofa.h)
 * --------------------------------------------------------------------- */

#define ES_MAX_KEY_LOOKUPS 16
static EsKeyLookup *key_lookups[ES_MAX_KEY_LOOKUPS];
static int	n_key_lookups;

/* Any change to a looked-up table or its indexes: find everything again. */
static void
key_lookup_inval(Datum arg, Oid relid)
{
	for (int i = 0; i < n_key_lookups; i++)
		if (relid == InvalidOid || key_lookups[i]->relid == relid || key_lookups[i]->indexid == relid)
			key_lookups[i]->relid = InvalidOid;
}

/* Finds table, unique btree index on keycol and column numbers; rel is open and locked. */
static void
key_lookup_resolve(EsKeyLookup *l, Relation rel)
{
	AttrNumber	key = attnameAttNum(rel, l->keycol, false);
	List	   *indexes;
	ListCell   *lc;
	Oid			found = InvalidOid;
	Relation	irel;
	bool		known = false;

	if (key == InvalidAttrNumber)
		elog(ERROR, "elfsofa: table elfsofa.%s has no column \"%s\"", l->relname, l->keycol);
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Oid			io = lfirst_oid(lc);
		HeapTuple	t = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(io));
		Form_pg_index ix;

		if (!HeapTupleIsValid(t))
			continue;
		ix = (Form_pg_index) GETSTRUCT(t);
		if (ix->indisunique && ix->indisvalid && ix->indisready && ix->indnkeyatts == 1 &&
			ix->indkey.values[0] == key &&
			heap_attisnull(t, Anum_pg_index_indexprs, NULL) &&
			heap_attisnull(t, Anum_pg_index_indpred, NULL))
		{
			Relation	cand = index_open(io, AccessShareLock);

			if (cand->rd_rel->relam == BTREE_AM_OID)
				found = io;
			index_close(cand, NoLock);
		}
		ReleaseSysCache(t);
		if (OidIsValid(found))
			break;
	}
	list_free(indexes);
	if (!OidIsValid(found))
		elog(ERROR, "elfsofa: table elfsofa.%s has no unique btree index on \"%s\"", l->relname, l->keycol);

	irel = index_open(found, AccessShareLock);
	l->eqproc = get_opcode(get_opfamily_member(irel->rd_opfamily[0], irel->rd_opcintype[0],
											   irel->rd_opcintype[0], BTEqualStrategyNumber));
	index_close(irel, NoLock);
	if (!RegProcedureIsValid(l->eqproc))
		elog(ERROR, "elfsofa: no equality operator for the index on elfsofa.%s(%s)", l->relname, l->keycol);
	for (int c = 0; c < l->ncols; c++)
	{
		l->attnums[c] = attnameAttNum(rel, l->cols[c], false);
		if (l->attnums[c] == InvalidAttrNumber)
			elog(ERROR, "elfsofa: table elfsofa.%s has no column \"%s\"", l->relname, l->cols[c]);
	}

	for (int i = 0; i < n_key_lookups; i++)
		known |= (key_lookups[i] == l);
	if (!known)
	{
		if (n_key_lookups == 0)
			CacheRegisterRelcacheCallback(key_lookup_inval, (Datum) 0);
		if (n_key_lookups >= ES_MAX_KEY_LOOKUPS)
			elog(ERROR, "elfsofa: too many key lookups");
		key_lookups[n_key_lookups++] = l;
	}
	l->indexid = found;
	l->relid = RelationGetRelid(rel);
}

void
es_key_scan_begin(EsKeyScan *s, EsKeyLookup *l)
{
	Relation	rel = NULL;

	/* the lock taken by table_open may bring invalidations: resolve under it */
	for (int tries = 0; rel == NULL || !OidIsValid(l->relid); tries++)
	{
		Oid			relid = l->relid;

		if (rel != NULL)
			table_close(rel, NoLock);
		if (tries > 3)
			elog(ERROR, "elfsofa: elfsofa.%s keeps changing", l->relname);
		if (!OidIsValid(relid))
		{
			relid = get_relname_relid(l->relname, get_namespace_oid("elfsofa", false));
			if (!OidIsValid(relid))
				elog(ERROR, "elfsofa: table elfsofa.%s does not exist", l->relname);
		}
		/* a cached oid may name a table dropped since: find it again by name */
		rel = try_relation_open(relid, AccessShareLock);
		if (rel == NULL)
		{
			l->relid = InvalidOid;
			continue;
		}
		if (!OidIsValid(l->relid))
			key_lookup_resolve(l, rel);
	}
	s->l = l;
	s->rel = rel;
	/* what the locks hold still: l's cache may be cleared meanwhile, not these */
	memcpy(s->attnums, l->attnums, sizeof(s->attnums));
	s->eqproc = l->eqproc;
	s->irel = index_open(l->indexid, AccessShareLock);
	s->scan = ES_INDEX_BEGINSCAN(rel, s->irel, GetActiveSnapshot(), 1);
	s->slot = table_slot_create(rel, NULL);
}

bool
es_key_scan_get(EsKeyScan *s, Datum key, Datum *values, bool *nulls)
{
	ScanKeyData sk;
	bool		found;

	ScanKeyEntryInitialize(&sk, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   s->irel->rd_indcollation[0], s->eqproc, key);
	index_rescan(s->scan, &sk, 1, NULL, 0);
	found = index_getnext_slot(s->scan, ForwardScanDirection, s->slot);
	if (found)
	{
		TupleDesc	desc = RelationGetDescr(s->rel);

		for (int c = 0; c < s->l->ncols; c++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, s->attnums[c] - 1);

			values[c] = slot_getattr(s->slot, s->attnums[c], &nulls[c]);
			if (!nulls[c])
				values[c] = datumCopy(values[c], att->attbyval, att->attlen);
		}
	}
	ExecClearTuple(s->slot);
	return found;
}

void
es_key_scan_end(EsKeyScan *s)
{
	index_endscan(s->scan);
	ExecDropSingleTupleTableSlot(s->slot);
	index_close(s->irel, NoLock);
	table_close(s->rel, NoLock);
}

bool
es_key_lookup(EsKeyLookup *l, Datum key, Datum *values, bool *nulls)
{
	EsKeyScan	s;
	bool		found;

	es_key_scan_begin(&s, l);
	found = es_key_scan_get(&s, key, values, nulls);
	es_key_scan_end(&s);
	return found;
}
