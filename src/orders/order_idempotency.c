/*
 * order_idempotency.c — process_order's replay step: a request with an
 * idempotency key is hashed after validation, serialised with other calls
 * with the same key, and answered from the stored response when the same
 * request was placed before (another request with that key is PT409).  The
 * key and response are saved in the order's transaction, so a failed call
 * leaves the key unused.
 */
#include "orders/orders.h"

#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/hashfn.h"
#include "common/sha2.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(elfsofa_purge_idempotency_keys);

/* Advisory-lock class for idempotency keys ('ELFi'), first half of the two-int4 key. */
#define ES_IDEM_LOCK_CLASS	0x454C4669


static EsPlan idem_lookup_plan = {
	"SELECT request_hash, response || '{\"replayed\": true}'::jsonb FROM elfsofa.idempotency_keys "
	"WHERE customer_id = $1 AND key = $2 AND expires_at > now()",
	2, {UUIDOID, TEXTOID}, .generic = true
};

static EsPlan idem_save_plan = {
	"INSERT INTO elfsofa.idempotency_keys AS k (customer_id, key, request_hash, order_id, response) "
	"VALUES ($1, $2, $3, $4, $5) "
	"ON CONFLICT (customer_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, "
	"  order_id = EXCLUDED.order_id, response = EXCLUDED.response, created_at = now(), "
	"  expires_at = now() + interval '24 hours' "
	"WHERE k.expires_at <= now()",
	5, {UUIDOID, TEXTOID, TEXTOID, INT8OID, JSONBOID}, .generic = true
};

static EsPlan purge_plan = {
	"DELETE FROM elfsofa.idempotency_keys WHERE expires_at <= now()",
	0, {InvalidOid}
};

/* canonical order for the request hash: sku, then location */
static Order *canon_order;

static int
alloc_canon_cmp(const void *a, const void *b)
{
	const Alloc *x = a;
	const Alloc *y = b;
	int			c = strcmp(canon_order->items[x->item].sku, canon_order->items[y->item].sku);

	return c != 0 ? c : strcmp(x->location, y->location);
}

static void
add_field(StringInfo s, const char *tag, const char *val)
{
	/* length-prefixed, so no two different requests share a canonical form */
	if (val == NULL)
		appendStringInfo(s, "%s-;", tag);
	else
		appendStringInfo(s, "%s%zu:%s;", tag, strlen(val), val);
}

/* SHA-256 of the request after validation (merged items, unknown fields dropped). */
static char *
request_hash(Order *o, Datum customer)
{
	StringInfoData s;
	pg_cryptohash_ctx *ctx;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char	   *hex = palloc(PG_SHA256_DIGEST_LENGTH * 2 + 1);

	initStringInfo(&s);
	add_field(&s, "c", DatumGetCString(DirectFunctionCall1(uuid_out, customer)));
	for (int a = 0; a < o->nallocs; a++)	/* sorted by sku and location */
	{
		Alloc	   *al = &o->allocs[a];

		add_field(&s, "s", o->items[al->item].sku);
		add_field(&s, "l", al->automatic ? NULL : al->location);
		appendStringInfo(&s, "q%d;", al->qty);
	}
	add_field(&s, "a", o->shipping ? JsonbToCString(NULL, &o->shipping->root, VARSIZE(o->shipping)) : NULL);
	add_field(&s, "n", o->note);
	if (o->has_payment)
	{
		add_field(&s, "pm", o->pay.method);
		add_field(&s, "pa", o->pay.amount ? numeric_normalize(o->pay.amount) : NULL);
		add_field(&s, "pp", o->pay.provider);
		add_field(&s, "pr", o->pay.provider_ref);
		add_field(&s, "ps", o->pay.status);
	}

	ctx = pg_cryptohash_create(PG_SHA256);
	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (uint8 *) s.data, s.len) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "elfsofa: could not compute SHA-256");
	pg_cryptohash_free(ctx);
	for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		sprintf(hex + 2 * i, "%02x", digest[i]);
	return hex;
}

/* Serialises concurrent calls with one key; held to the end of the transaction. */
static void
lock_idempotency_key(Datum customer, const char *key)
{
	StringInfoData s;

	initStringInfo(&s);
	appendBinaryStringInfo(&s, (char *) DatumGetUUIDP(customer)->data, UUID_LEN);
	appendStringInfoString(&s, key);
	DirectFunctionCall2(pg_advisory_xact_lock_int4,
						Int32GetDatum(ES_IDEM_LOCK_CLASS),
						Int32GetDatum((int32) hash_bytes((unsigned char *) s.data, s.len)));
}

/*
 * es_order_replay looks the request up by its idempotency key (o->idem_key
 * must be set): the stored response, copied into callcxt, when the same
 * request was placed before; NULL when the key is unused (then *hash is the
 * request's hash, for es_order_save_key).  PT409 when the key was used for
 * another request.  SPI must be connected.
 */
Jsonb *
es_order_replay(Order *o, Datum customer, char **hash, MemoryContext callcxt)
{
	Datum		args[2] = {customer, CStringGetTextDatum(o->idem_key)};
	MemoryContext old;
	Jsonb	   *result;
	bool		isnull;
	char	   *stored;

	canon_order = o;
	qsort(o->allocs, o->nallocs, sizeof(Alloc), alloc_canon_cmp);
	*hash = request_hash(o, customer);
	lock_idempotency_key(customer, o->idem_key);
	es_exec(&idem_lookup_plan, args, NULL, false, 1);
	if (SPI_processed == 0)
		return NULL;
	stored = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (strcmp(stored, *hash) != 0)
		ereport(ERROR,
				(errcode(ES_ERRCODE_CONFLICT),
				 errmsg("idempotency key was already used for a different request"),
				 errdetail("idempotency_key \"%s\" belongs to an earlier order with other contents.", o->idem_key),
				 errhint("Use a new idempotency key for a new order.")));
	old = MemoryContextSwitchTo(callcxt);
	result = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * es_order_save_key stores the key, the request's hash and the response of
 * the order just placed; PT409 when a concurrent request took the key.
 */
void
es_order_save_key(Order *o, Datum customer, const char *hash, int64 order_id, Jsonb *result)
{
	Datum		args[5] = {customer, CStringGetTextDatum(o->idem_key), CStringGetTextDatum(hash),
	Int64GetDatum(order_id), JsonbPGetDatum(result)};

	es_exec(&idem_save_plan, args, NULL, false, 0);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ES_ERRCODE_CONFLICT),
				 errmsg("idempotency key was already used"),
				 errdetail("idempotency_key \"%s\" was taken by a concurrent request.", o->idem_key)));
}

/* elfsofa.purge_idempotency_keys(): upkeep, deletes expired keys */
Datum
elfsofa_purge_idempotency_keys(PG_FUNCTION_ARGS)
{
	uint64		n;

	SPI_connect();
	es_exec(&purge_plan, NULL, NULL, false, 0);
	n = SPI_processed;
	SPI_finish();
	PG_RETURN_INT64((int64) n);
}
