# elfsofa — PGXS build, plus the project's own entry points (demo, test, bench).
EXTENSION   = elfsofa
MODULE_big  = elfsofa
OBJS        = $(patsubst %.c,%.o,$(wildcard src/*.c $(filter-out src/bin/%,$(wildcard src/*/*.c))))
DATA_built  = elfsofa--1.0.sql
REGRESS     = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS = --inputdir=.
PG_CPPFLAGS = -Isrc -I$(libpq_srcdir)
# schedule.c talks to pg_cron's database over libpq when elfsofa lives elsewhere.
SHLIB_LINK_INTERNAL = $(libpq)
PG_CFLAGS   = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
EXTRA_CLEAN = elfsofa--1.0.sql results regression.diffs regression.out test/isolation/output_iso

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

# elfsofa-listen: a libpq client, kept out of the module's src/*.c wildcard.
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

elfsofa--1.0.sql: $(SQL_PARTS)
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
