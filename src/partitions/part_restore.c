/*
 * part_restore.c — a plain pg_restore (or pg_dump | psql) of an elfsofa
 * database that reports no error and loses no row.
 *
 * The partitions of elfsofa's tables are ordinary tables (not extension
 * members), so the dump carries them with their rows.  The restore's CREATE
 * EXTENSION makes the partitioned parents with their indexes first; pg_dump's
 * "CREATE TABLE partition; ATTACH PARTITION" then makes each partition's
 * primary key and indexes from the parent's, and the dump's own ADD PRIMARY
 * KEY / CREATE INDEX for them would fail ("multiple primary keys", "already
 * exists").  While a restore loads (the install script's restore branch put
 * the session in session_replication_role = replica, with row_security off
 * as pg_dump's scripts set it), such a statement for a partition of an
 * elfsofa table that already has that index is skipped: the index it asks
 * for is there, made by ATTACH, and ATTACH PARTITION of the parent index that
 * follows finds it attached.
 */
#include "partitions/partitions.h"

#include "access/relation.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "nodes/parsenodes.h"
#include "utils/lsyscache.h"
#include "utils/relcache.h"
#include "utils/rel.h"
#include "utils/rls.h"

/* Whether relid is a partition whose parent belongs to the elfsofa extension. */
static bool
is_elfsofa_partition(Oid relid)
{
	Oid			ext = get_extension_oid("elfsofa", true);

	if (!OidIsValid(ext) || !OidIsValid(relid) || !get_rel_relispartition(relid))
		return false;
	return getExtensionOfObject(RelationRelationId, get_partition_parent(relid, true)) == ext;
}

/* Whether relid already has a primary key (made by ATTACH PARTITION). */
static bool
has_primary_key(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	Oid			pk = RelationGetPrimaryKeyIndex(rel);

	relation_close(rel, AccessShareLock);
	return OidIsValid(pk);
}

/* Whether relid has an index named idxname that is attached to a parent index. */
static bool
has_attached_index(Oid relid, const char *idxname)
{
	Oid			idx = get_relname_relid(idxname, get_rel_namespace(relid));

	return OidIsValid(idx) && get_rel_relispartition(idx) && IndexGetRelation(idx, true) == relid;
}

/*
 * es_partitions_restore_skip says whether a utility statement of a restore
 * asks for an index of an elfsofa partition that ATTACH PARTITION already
 * made (src/hooks.c then skips it, with a NOTICE).  Outside a restore, or for
 * any other statement, false.
 */
bool
es_partitions_restore_skip(PlannedStmt *pstmt)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA || row_security)
		return false;
	if (IsA(stmt, IndexStmt))
	{
		IndexStmt  *is = (IndexStmt *) stmt;
		Oid			relid = RangeVarGetRelid(is->relation, NoLock, true);

		if (is->idxname == NULL || !is_elfsofa_partition(relid) || !has_attached_index(relid, is->idxname))
			return false;
		ereport(NOTICE,
				(errmsg("index \"%s\" of partition \"%s\" was made when the partition was attached; skipped",
						is->idxname, get_rel_name(relid))));
		return true;
	}
	if (IsA(stmt, AlterTableStmt))
	{
		AlterTableStmt *as = (AlterTableStmt *) stmt;
		AlterTableCmd *cmd;
		Constraint *con;
		Oid			relid;

		if (list_length(as->cmds) != 1)
			return false;
		cmd = linitial_node(AlterTableCmd, as->cmds);
		if (cmd->subtype != AT_AddConstraint || !IsA(cmd->def, Constraint))
			return false;
		con = (Constraint *) cmd->def;
		if (con->contype != CONSTR_PRIMARY && con->contype != CONSTR_UNIQUE)
			return false;
		relid = RangeVarGetRelid(as->relation, NoLock, true);
		if (!is_elfsofa_partition(relid))
			return false;
		if (con->contype == CONSTR_PRIMARY ? !has_primary_key(relid)
			: (con->conname == NULL || !has_attached_index(relid, con->conname)))
			return false;
		ereport(NOTICE,
				(errmsg("%s of partition \"%s\" was made when the partition was attached; skipped",
						con->contype == CONSTR_PRIMARY ? "primary key" : "unique constraint",
						get_rel_name(relid))));
		return true;
	}
	return false;
}
