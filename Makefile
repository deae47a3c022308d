# elfsofa — PGXS build, plus the project's own entry points (demo, test, bench).
EXTENSION   = elfsofa
MODULE_big  = elfsofa
# The objects in layer order (README, "Hacking"): base, the areas, orders, ops,
# then the hooks and the start.  A new file is added here deliberately.
OBJS = \
	src/base/args.o src/base/jsonb_build.o src/base/jsonb_read.o src/base/jsonb_text.o \
	src/base/keylookup.o src/base/leafwriter.o src/base/request.o src/base/spi.o \
	src/customers/caller.o src/customers/customers.o src/customers/row_guard.o \
	src/inventory/buckets.o src/inventory/reserve.o src/inventory/stock.o \
	src/events/changes.o src/events/events.o src/events/launcher.o src/events/notifications.o src/events/publisher.o src/events/watermark.o \
	src/audit/audit_admin.o src/audit/audit_meta.o src/audit/audit_rowjson.o \
	src/audit/audit_trigger.o src/audit/audit_write.o \
	src/partitions/archive.o src/partitions/part_catalog.o src/partitions/part_ddl.o \
	src/partitions/part_maintain.o src/partitions/part_period.o src/partitions/part_restore.o src/partitions/schedule.o \
	src/security/ratelimit.o \
	src/orders/lifecycle.o src/orders/order_idempotency.o src/orders/order_parse.o \
	src/orders/orders.o src/orders/payments.o \
	src/ops/analytics.o src/ops/carts.o src/ops/crm.o src/ops/health.o src/ops/logging.o \
	src/hooks.o src/init.o
# The current version's install script is built from src/sql/*.sql; older
# versions' scripts and the upgrade scripts are kept as they shipped.
EXT_VERSION = 1.1
DATA_built  = elfsofa--$(EXT_VERSION).sql
DATA        = $(wildcard src/sql/versions/elfsofa--*.sql)
REGRESS     = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS = --inputdir=.
PG_CPPFLAGS = -Isrc -I$(libpq_srcdir)
# schedule.c talks to pg_cron's database over libpq when elfsofa lives elsewhere.
SHLIB_LINK_INTERNAL = $(libpq)
PG_CFLAGS   = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
EXTRA_CLEAN = elfsofa--$(EXT_VERSION).sql results regression.diffs regression.out test/isolation/output_iso

# The install script is assembled from one file per area (pg_partman style).
SQL_PARTS = $(sort $(wildcard src/sql/*.sql))

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifeq ($(PGXS),)
# No server development files yet: only the bootstrap targets below work.
all install installcheck:
	@echo "pg_config not found: run 'make demo' or 'make test' (they install PostgreSQL 15 first)" >&2; exit 1
else
include $(PGXS)
endif

# elfsofa-listen: a libpq client, not part of the module.
LISTEN_BIN = src/bin/elfsofa-listen
EXTRA_CLEAN += $(LISTEN_BIN)
ifneq ($(PGXS),)
all: $(LISTEN_BIN)
install: install-listen
endif
$(LISTEN_BIN): src/bin/elfsofa-listen.c
	$(CC) -O2 -Wall -Wextra -Werror -I$(shell $(PG_CONFIG) --includedir) -o $@ $< \
		-L$(shell $(PG_CONFIG) --libdir) -lpq
.PHONY: install-listen
install-listen: $(LISTEN_BIN)
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) $(LISTEN_BIN) '$(DESTDIR)$(bindir)/elfsofa-listen'

# PGXS tracks no header dependencies: every object depends on the shared header
# (a struct changed there would otherwise leave stale objects behind).
$(OBJS): $(wildcard src/*.h src/*/*.h)

elfsofa--$(EXT_VERSION).sql: $(SQL_PARTS)
	cat $(SQL_PARTS) > $@

.PHONY: demo test stop bench reliability
demo:
	bash test/demo.sh
test:
	bash test/run.sh
stop:
	bash test/demo.sh stop
bench:
	bash test/bench/run.sh
# elfsofa built with UBSan: regression, isolation, hostile input and a soak against it
reliability:
	bash test/reliability/asan.sh
