/*
 * elfsofa.h — the base layer (src/base/) and the declarations the areas share.
 */
#ifndef ELFSOFA_H
#define ELFSOFA_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "base/args.h"
#include "base/compat.h"
#include "base/errcodes.h"
#include "base/jsonb.h"
#include "base/keylookup.h"
#include "base/leafwriter.h"
#include "base/request.h"
#include "base/spi.h"

#include "audit/audit.h"
#include "customers/customers.h"
#include "events/events.h"
#include "inventory/inventory.h"
#include "ops/ops.h"
#include "orders/orders.h"
#include "partitions/partitions.h"
#include "security/security.h"




#endif							/* ELFSOFA_H */
