#!/usr/bin/env python3
"""test/reliability/hostile.py — generates hostile calls to every elfsofa RPC function.

Reads the functions to attack on stdin, one per line, as printed by the query in
81_reliability_hostile.sh:   name|arg names (comma list)|arg types (comma list)|number of arguments without a default
Writes psql scripts argv[1].A.sql and argv[1].B.sql, and a case list (argv[2]: "phase|id|sql").

Phase A: calls that must be REJECTED (known functions, inputs the contract calls
malformed, unknown or conflicting).  The script checks the SQLSTATE of every one,
and that the row counts of every elfsofa table are the same after the phase.
Phase B: type-driven fuzz of every function, known or not (any argument the
catalogue says it takes gets hostile values of that type); calls may succeed, but
an error must carry a documented SQLSTATE and no backend may crash.

Only the standard library; deterministic for a given seed (argv[3]).
"""
import json
import random
import sys

out_path, cases_path = sys.argv[1], sys.argv[2]
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 9)
funcs = {}
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line:
        continue
    name, names, types, required = line.split("|")
    funcs[name] = (names.split(",") if names else [], types.split(",") if types else [], int(required))


def lit(s):
    """SQL text literal (standard_conforming_strings = on)."""
    return "'" + s.replace("'", "''") + "'"


def jlit(v):
    return lit(json.dumps(v, ensure_ascii=False)) + "::jsonb"


HOSTILE_TEXT = [
    "NULL", "''", "' '", lit("x'; DROP TABLE elfsofa.orders; --"), lit("' OR '1'='1"),
    lit("$$; SELECT pg_sleep(10); $$"), lit("\\"), lit("\\x00\\u0000"), lit("%s%s%n%x"),
    lit("${jndi:ldap://e/x}"), lit("<script>alert(1)</script>"), lit("ผ้าคลุมโซฟา"),
    lit("\u202e\u0645\u0631\u062d\u0628\u0627"), lit("\u200b\u200d\ufeff"), lit("😀" * 40),
    lit("A" * 65), lit("A" * 100000), "repeat('x', 1000001)", "chr(0)", "E'a\\000b'",
    lit("REL-001"), lit("main"), lit("elfsofa.orders"), lit("\t\r\n"), lit("-1"), lit("NaN"),
    "convert_from('\\xc3\\x28'::bytea, 'LATIN1')", lit("\U0010ffff"), lit("a@b"), lit("x" * 300 + "@y.z"),
]
HOSTILE_INT = ["NULL", "0", "-1", "1", "2", "-2147483648", "2147483647", "100000", "100001", "2147483648::int",
               "'12abc'::int", "1e10::int"]
HOSTILE_BIGINT = ["NULL", "0", "-1", "1", "9223372036854775807", "-9223372036854775808",
                  "9223372036854775808::bigint", "(SELECT max(id) FROM elfsofa.orders)", "(SELECT min(id) FROM elfsofa.orders)"]
HOSTILE_NUMERIC = ["NULL", "0", "-0.01", "'NaN'::numeric", "'Infinity'::numeric", "'-Infinity'::numeric",
                   "1e300::numeric", "0.000000001", "99999999999.99", "-1"]
HOSTILE_UUID = ["NULL", "'00000000-0000-0000-0000-000000000000'::uuid", "gen_random_uuid()",
                "'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid", "'nope'::uuid",
                "(SELECT id FROM elfsofa.customers ORDER BY id LIMIT 1)"]
HOSTILE_INTERVAL = ["NULL", "'0'::interval", "'-1 year'::interval", "'1 microsecond'::interval",
                    "'178000000 years'::interval", "'infinity'::interval", "'1 month -30 days'::interval"]
HOSTILE_TS = ["NULL", "'infinity'::timestamptz", "'-infinity'::timestamptz", "'4713-01-01 BC'::timestamptz",
              "'294276-12-31'::timestamptz", "now()"]
HOSTILE_BOOL = ["NULL", "true", "false"]
HOSTILE_REGCLASS = ["NULL", "'pg_catalog.pg_class'::regclass", "'elfsofa.events'::regclass",
                    "'elfsofa.products'::regclass", "to_regclass('elfsofa.audit_log')", "'pg_catalog.pg_proc'::regclass",
                    "0::oid::regclass", "'elfsofa.nope'::regclass"]
HOSTILE_TEXTARR = ["NULL", "'{}'::text[]", "'{id,\"\",NULL}'::text[]", "array_fill('x'::text, ARRAY[10000])",
                   "ARRAY[repeat('c', 100000)]", "'{{a,b},{c,d}}'::text[]"]


def deep(n, kind="array"):
    if kind == "array":
        return "'" + "[" * n + "]" * n + "'::jsonb"
    return "'" + '{"a":' * n + "1" + "}" * n + "'::jsonb"


HOSTILE_JSON = [
    "NULL", "'null'::jsonb", "'[]'::jsonb", "'{}'::jsonb", "'\"str\"'::jsonb", "'1'::jsonb", "'true'::jsonb",
    "'1e400'::jsonb", "'-0'::jsonb", "'{\"a\":\"\\u0000\"}'::jsonb", "'\"\\ud800\"'::jsonb", "'{bad'::jsonb",
    deep(2000), deep(2000, "object"), deep(200000), jlit({"items": "x" * 100000}),
    jlit({"items": [{"sku": "REL-001", "quantity": 1}] * 5000}),
    "(SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 50000) i)",
    jlit({"__proto__": {"admin": True}, "constructor": {"prototype": 1}}),
    jlit({"sku": "'; DROP TABLE elfsofa.orders; --", "quantity": "1; SELECT 1"}),
]


SANE = {
    "text": ["'REL-001'", "'main'", "'c7@rel.test'", "'confirmed'", "'cancelled'", "'note'", "'elfsofa.orders'", "'created_at'"],
    "integer": ["1", "3", "10"], "bigint": ["(SELECT rel.pending_order())", "1", "(SELECT max(id) FROM elfsofa.events)"],
    "numeric": ["100", "130.00"], "uuid": ["rel.customer(5)"], "interval": ["'1 day'::interval", "'90 days'::interval"],
    "timestamp with time zone": ["now()"], "boolean": ["true", "false"], "regclass": ["'elfsofa.system_logs'::regclass"],
    "text[]": ["'{updated_at}'::text[]"],
    "jsonb": ["jsonb_build_object('customer_id', rel.customer(9), 'items', '[{\"sku\": \"REL-002\", \"quantity\": 1}]'::jsonb)",
              "'{\"method\": \"card\", \"status\": \"pending\"}'::jsonb", "'{}'::jsonb", "'[]'::jsonb"],
}


def pick(t):
    t = t.strip()
    if rng.random() < 0.5 and t in SANE:
        return rng.choice(SANE[t])
    table = {
        "text": HOSTILE_TEXT, "character varying": HOSTILE_TEXT, "name": HOSTILE_TEXT,
        "integer": HOSTILE_INT, "smallint": HOSTILE_INT, "bigint": HOSTILE_BIGINT,
        "numeric": HOSTILE_NUMERIC, "double precision": HOSTILE_NUMERIC, "uuid": HOSTILE_UUID,
        "interval": HOSTILE_INTERVAL, "timestamp with time zone": HOSTILE_TS, "boolean": HOSTILE_BOOL,
        "regclass": HOSTILE_REGCLASS, "text[]": HOSTILE_TEXTARR, "jsonb": HOSTILE_JSON, "json": HOSTILE_JSON,
    }
    vals = table.get(t, ["NULL"])
    v = rng.choice(vals)
    if t in ("json", "jsonb") and v.endswith("::jsonb") and t == "json":
        v = v[:-len("::jsonb")] + "::json"
    return v


cases = []   # (phase, sql)


def A(sql):
    cases.append(("A", sql))


def B(sql):
    cases.append(("B", sql))


# ----- Phase A: must be rejected -------------------------------------------
if "restock" in funcs:
    for sku in ["NULL", "''", lit("NOPE-404"), lit("x'; DROP TABLE elfsofa.orders; --"), lit("A" * 100000),
                lit("ผ้าคลุม"), lit("REL-001 "), lit(" REL-001"), lit("rel-001\u200b"), "chr(0)", lit("%s%n"),
                lit("REL-001';--"), lit("\u202eREL-001")]:
        A(f"SELECT elfsofa.restock({sku}, 1)")
    for qty in ["NULL", "0", "-1", "-2147483648", "2147483647", "100001", "2147483648::int", "'1.5'::int", "'x'::int"]:
        A(f"SELECT elfsofa.restock('REL-001', {qty})")
    for loc in ["''", lit("MAIN"), lit("main; DROP"), lit("a" * 33), lit("กรุงเทพ"), lit("main\n"), lit("../etc")]:
        A(f"SELECT elfsofa.restock('REL-001', 1, {loc})")
    for note in [lit("n" * 1001), lit("n" * 100000), "repeat('ผ', 400)"]:
        A(f"SELECT elfsofa.restock('REL-001', 1, 'main', {note})")
if "available" in funcs:
    for sku in ["NULL", "''", lit("NOPE-404"), lit("A" * 100000), lit("'; SELECT 1; --")]:
        A(f"SELECT elfsofa.available({sku})")
    for loc in ["''", lit("MAIN"), lit("a" * 33)]:
        A(f"SELECT elfsofa.available('REL-001', {loc})")
if "upsert_customer" in funcs:
    for email in ["NULL", "''", lit("no-at-sign"), lit("@x.y"), lit("x@"), lit("a@b@c"), lit("a b@c.d"),
                  lit("a\n@c.d"), lit("x" * 250 + "@y.zz"), lit("x'; DROP TABLE elfsofa.customers; --"),
                  "repeat('a', 1000000) || '@x.y'"]:
        A(f"SELECT elfsofa.upsert_customer({email})")
    for phone in ["''", lit("12345"), lit("1" * 21), lit("+66 81 abc"), lit("081-234-5678; --"), lit("++66812345678"),
                  lit("０８１２３４５６７８")]:
        A(f"SELECT elfsofa.upsert_customer('new1@rel.test', NULL, {phone})")
    A(f"SELECT elfsofa.upsert_customer('new2@rel.test', {lit('n' * 201)})")
    # an auth user already linked to another customer
    A("SELECT elfsofa.upsert_customer('c2@rel.test', NULL, NULL, '11111111-1111-1111-1111-111111111111')")

if "process_order" in funcs:
    cust = "(SELECT rel.customer(1))"
    good_item = {"sku": "REL-001", "quantity": 1}

    def order(od, inv="NULL", pay="NULL"):
        return f"SELECT elfsofa.process_order({od}, {inv}, {pay})"

    def od(**kw):
        base = {"items": [good_item]}
        base.update(kw)
        return f"(jsonb_build_object('customer_id', {cust}) || {jlit(base)})"

    for bad in ["NULL", "'null'::jsonb", "'[]'::jsonb", "'\"x\"'::jsonb", "'42'::jsonb", "'{}'::jsonb"]:
        A(order(bad))
    for items in [None, "x", 1, {}, [], [None], [1], ["REL-001"], [{}], [{"sku": "REL-001"}],
                  [{"quantity": 1}], [{"sku": 1, "quantity": 1}], [{"sku": None, "quantity": 1}],
                  [{"sku": "REL-001", "quantity": "1"}], [{"sku": "REL-001", "quantity": 1.5}],
                  [{"sku": "REL-001", "quantity": 0}], [{"sku": "REL-001", "quantity": -1}],
                  [{"sku": "REL-001", "quantity": 1e10}], [{"sku": "REL-001", "quantity": 2147483648}],
                  [{"sku": "REL-001", "quantity": 1e400}], [{"sku": "REL-001", "quantity": -0.0}],
                  [{"sku": "REL-001", "quantity": None}], [{"sku": "REL-001", "quantity": True}],
                  [{"sku": "REL-001", "quantity": [1]}], [{"sku": "NOPE-404", "quantity": 1}],
                  [{"sku": "x'; DROP TABLE elfsofa.orders; --", "quantity": 1}],
                  [{"sku": "REL-001", "quantity": 1000000}], [{"sku": "A" * 100000, "quantity": 1}],
                  [good_item] * 1001, [{"sku": "REL-001", "quantity": 1}, {"sku": "REL-002", "quantity": 0}]]:
        if items is None:
            A(order(f"jsonb_build_object('customer_id', {cust})"))
        else:
            A(order(f"jsonb_build_object('customer_id', {cust}, 'items', {jlit(items)})"))
    for c in ["'null'", "'1'", "'\"nope\"'", "'\"00000000-0000-0000-0000-000000000000\"'", "'[]'",
              "to_jsonb(repeat('a', 100000))"]:
        A(order(f"jsonb_build_object('customer_id', {c}::jsonb, 'items', {jlit([good_item])})"))
    for key in [1, [], {}, "", "k" * 256, True]:
        A(order(od(idempotency_key=key)))
    A(order(od(note="n" * 2001)))
    A(order(od(items=[good_item] * 20000)))
    B(order(f"({od()} || jsonb_build_object('shipping_address', {deep(3000, 'object')}))"))
    B(order(od(items=[{"sku": "REL-001", "quantity": 1, "location": "NOWHERE!"}])))   # unknown fields are ignored
    B(order(od(shipping_address={"line1": "x'; DROP TABLE elfsofa.orders; --", "zip": "\u202e10110"}, extra_field=[1, 2])))
    for pay in ["'[]'::jsonb", "'\"card\"'::jsonb", jlit({"method": "bitcoin"}), jlit({"method": 1}),
                jlit({"method": "card", "amount": "110"}), jlit({"method": "card", "amount": -1}),
                jlit({"method": "card", "amount": 0.001}), jlit({"method": "card", "amount": 1e300}),
                jlit({"method": "card", "amount": 109.99}), jlit({"method": "card", "status": "stolen"}),
                jlit({"method": "card", "provider_ref": "r" * 300})]:
        A(order(od(), "NULL", pay))
    for inv in ["'{}'::jsonb", "'\"x\"'::jsonb", jlit([{"sku": "REL-001"}]), jlit([{"sku": "REL-001", "location": "MAIN!", "quantity": 1}]),
                jlit([{"sku": "REL-001", "location": "main", "quantity": -5}]), jlit([1, 2, 3])]:
        A(order(od(), inv))
if "set_order_status" in funcs:
    for oid, st in [("NULL", "'confirmed'"), ("-1", "'confirmed'"), ("9223372036854775807", "'confirmed'"),
                    ("(SELECT rel.pending_order())", "NULL"), ("(SELECT rel.pending_order())", "''"),
                    ("(SELECT rel.pending_order())", "'CONFIRMED'"), ("(SELECT rel.pending_order())", "'teleported'"),
                    ("(SELECT rel.pending_order())", "'delivered'"), ("(SELECT rel.pending_order())", "'returned'"),
                    ("(SELECT rel.pending_order())", "'pending'"), ("(SELECT rel.pending_order())", lit("confirmed'; --")),
                    ("(SELECT rel.cancelled_order())", "'confirmed'"), ("(SELECT rel.cancelled_order())", "'pending'")]:
        A(f"SELECT elfsofa.set_order_status({oid}, {st})")
    A(f"SELECT elfsofa.set_order_status((SELECT rel.pending_order()), 'confirmed', {lit('n' * 100000)})")
if "cancel_order" in funcs:
    for oid in ["NULL", "0", "-1", "9223372036854775807", "(SELECT rel.cancelled_order())"]:
        A(f"SELECT elfsofa.cancel_order({oid})")
    A(f"SELECT elfsofa.cancel_order((SELECT rel.pending_order()), {lit('r' * 100000)})")

# ----- Phase B: type-driven fuzz of every function --------------------------
SKIP = {"schedule_maintenance", "unschedule_maintenance"}   # would touch pg_cron in the postgres database
per_func = int(sys.argv[4]) if len(sys.argv) > 4 else 300
for name, (names, types, required) in sorted(funcs.items()):
    if name in SKIP:
        continue
    for _ in range(per_func if types else 3):
        if types and rng.random() < 0.5:
            # one hostile argument among plausible ones reaches deeper into the function
            k = rng.randrange(len(types))
            args = [pick(t) if i == k else rng.choice(SANE.get(t.strip(), ["NULL"])) for i, t in enumerate(types)]
        else:
            args = [pick(t) for t in types]
        # sometimes leave defaulted trailing arguments out, sometimes name them
        if len(args) > required and rng.random() < 0.3:
            args = args[: rng.randint(required, len(args))]
        if names and all(names) and rng.random() < 0.3:
            argtxt = ", ".join(f"{n} => {a}" for n, a in zip(names, args))
        else:
            argtxt = ", ".join(args)
        B(f"SELECT elfsofa.{name}({argtxt})")

with open(out_path + ".A.sql", "w") as fa, open(out_path + ".B.sql", "w") as fb, open(cases_path, "w") as c:
    for f in (fa, fb):
        f.write("\\set ON_ERROR_STOP 0\n\\set VERBOSITY terse\nSET statement_timeout = '10s';\n")
    for i, (ph, sql) in enumerate(cases, 1):
        f = fa if ph == "A" else fb
        f.write(sql + ";\n")
        f.write(f"\\echo @@ {ph} {i} :SQLSTATE\n")
        c.write(f"{ph}|{i}|{sql[:240].replace(chr(10), ' ')}\n")
