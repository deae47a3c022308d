#!/usr/bin/env bash
# test/scripts/00_layers.sh — the layering of src/ (README, "Hacking"):
#   base/                                        includes base/ only
#   customers/ inventory/ events/ audit/ partitions/ security/
#                                                base/ and its own folder
#   orders/                                      + customers/ inventory/ events/
#   ops/                                         base/, customers/, its own folder
#   src/init.c, src/hooks.c                      anything
# and: #if PG_VERSION_NUM only in src/base/compat.h; a *_hook assignment only
# in src/hooks.c; no .c file over 900 lines.  Each rule is also run against a
# copy of src/ with one planted violation, which it must catch.
source "$(dirname "$0")/../tap.sh"

allowed() {     # allowed <folder>: the folders its files may include from
    case $1 in
    base) echo "base" ;;
    customers | inventory | events | audit | partitions | security) echo "base $1" ;;
    orders) echo "base customers inventory events orders" ;;
    ops) echo "base customers ops" ;;
    *) echo "" ;;
    esac
}

# Prints one line per include a file's layer does not allow.
bad_includes() {
    local tree=$1 f dir inc folder
    for f in $(cd "$tree" && ls */*.c */*.h 2>/dev/null); do
        dir=${f%%/*}
        [ "$dir" = bin ] || [ "$dir" = sql ] && continue
        while read -r inc; do
            folder=${inc%%/*}
            if [ "$folder" = "$inc" ]; then
                # a bare name: one of ours at the top (hooks.h) is for the top only
                [ -f "$tree/$inc" ] && echo "$f: includes $inc"
                continue
            fi
            [ -d "$tree/$folder" ] || continue          # a PostgreSQL header (utils/..., access/...)
            grep -qw "$folder" <<<"$(allowed "$dir")" || echo "$f: includes $inc"
        done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$tree/$f")
    done
}

bad_versions() { (cd "$1" && grep -rn --include='*.[ch]' 'PG_VERSION_NUM' . | grep -v '^./base/compat.h:'); }
bad_hooks() { (cd "$1" && grep -rnE --include='*.c' '\b[A-Za-z_]+_hook[[:space:]]*=[^=]' . | grep -v '^./hooks.c:'); }
long_files() { (cd "$1" && wc -l $(find . -name '*.c' -not -path './bin/*') | awk '$2 != "total" && $1 > 900'); }

SRC=$ES_ROOT/src
for rule in bad_includes bad_versions bad_hooks long_files; do
    out=$($rule "$SRC")
    tap_is "$out" "" "src/: $rule finds nothing"
done

# each rule catches a planted violation
T=$ES_TMP/layers
rm -rf "$T"; mkdir -p "$T"
plant() {       # plant <rule> <file> <line to append> <description>
    rm -rf "$T/src"; cp -a "$SRC" "$T/src"
    printf '%s\n' "$3" >>"$T/src/$2"
    out=$($1 "$T/src")
    tap_ok $([ -n "$out" ] && echo 0 || echo 1) "$1 catches $4"
}
plant bad_includes base/spi.c '#include "events/events.h"' "base including an area"
plant bad_includes events/events.c '#include "orders/orders.h"' "an area including the layer above"
plant bad_includes ops/health.c '#include "events/events.h"' "ops including an area it may not"
plant bad_includes orders/orders.c '#include "hooks.h"' "an area including the top's header"
plant bad_versions orders/orders.c '#if PG_VERSION_NUM >= 160000' "a version test outside compat.h"
plant bad_hooks audit/audit_trigger.c 'static void f(void) { ExecutorStart_hook = NULL; }' "a hook assigned outside hooks.c"
plant long_files ops/crm.c "$(yes '/* filler */' | head -900)" "a file over 900 lines"
rm -rf "$T"
tap_done
