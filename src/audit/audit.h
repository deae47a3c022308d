/*
 * audit.h — the audit area (owns audit_log).
 */
#ifndef ES_AUDIT_H
#define ES_AUDIT_H

#include "postgres.h"

#include "base/args.h"
#include "base/compat.h"
#include "base/errcodes.h"
#include "base/jsonb.h"
#include "base/keylookup.h"
#include "base/request.h"
#include "base/spi.h"
#include "base/leafwriter.h"

/*
 * Installs the hook that refuses TRUNCATE of audit_log partitions and
 * the hooks that write deferred audit index entries before any query runs.
 */
extern void es_audit_init(void);

#endif							/* ES_AUDIT_H */
