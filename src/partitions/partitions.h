/*
 * partitions.h — the partitions area: partition sets, maintenance, archiving, pg_cron jobs (owns partition_sets).
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

/*
 * GUCs of partition
 * maintenance, registered from _PG_init.
 */
extern void es_partitions_init(void);

#endif							/* ES_PARTITIONS_H */
