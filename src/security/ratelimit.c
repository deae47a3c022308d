/*
 * ratelimit.c — token-bucket rate limits: elfsofa.rate_limit() and the
 * PostgREST pre-request guard elfsofa.api_guard().
 *
 * A bucket holds up to max_requests tokens and refills at max_requests per
 * `per`; each allowed request takes one token.  When elfsofa is in
 * shared_preload_libraries the buckets live in a fixed-size shared hash table
 * under one LWLock (not transactional: a request that later fails still
 * counts).  Otherwise they live in the unlogged table elfsofa.rate_limits,
 * updated with one UPSERT (counts only committed requests; read-only
 * transactions check without consuming).
 *
 * The shared table is set-associative: a bucket's hash picks one set of
 * RL_WAYS slots, so finding, adding or evicting a bucket looks at RL_WAYS
 * slots whatever the table holds.  A full set gives up the slot that forgives
 * least (the most refilled bucket, fully refilled ones first); the table store
 * is never a spill-over, so a full table still counts every request.
 *
 * api_guard() keys anonymous callers on one address the trusted proxy wrote
 * (elfsofa.rate_limit_client_header, counted from the right); callers with no
 * usable address share one bucket.
 */
#include "security/security.h"

#include <math.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(elfsofa_rate_limit);
PG_FUNCTION_INFO_V1(elfsofa_api_guard);
PG_FUNCTION_INFO_V1(elfsofa_rate_limit_reset);

#define RL_MAX_BUCKET_LEN	200

typedef struct RlKey
{
	uint64		h1;
	uint64		h2;
} RlKey;

typedef struct RlEntry
{
	RlKey		key;
	bool		used;
	double		tokens;
	double		capacity;
	double		rate_per_us;	/* tokens regained per microsecond */
	TimestampTz last;
} RlEntry;

#define RL_WAYS		8

typedef struct RlShared
{
	LWLock	   *lock;
	int			nsets;			/* sets of RL_WAYS slots */
	RlEntry		slots[FLEXIBLE_ARRAY_MEMBER];
} RlShared;

typedef struct RlResult
{
	bool		allowed;
	double		retry_after;	/* seconds until one token is back (when denied) */
} RlResult;

enum
{
	RL_STORE_AUTO,
	RL_STORE_TABLE
};

static const struct config_enum_entry store_options[] = {
	{"auto", RL_STORE_AUTO, false},
	{"table", RL_STORE_TABLE, false},
	{NULL, 0, false}
};

static int	rl_slots = 10000;
static int	rl_user_per_minute = 600;
static int	rl_anon_per_minute = 120;
static int	rl_store = RL_STORE_AUTO;
static int	max_request_bytes = 262144;

static char *rl_client_header = NULL;
static int	rl_client_hop = 1;

static RlShared *rl_shared = NULL;
static bool rl_requested = false;

/* The bucket of anonymous requests that carry no usable client address. */
#define RL_NO_ADDRESS_BUCKET	"ip:none"


static int
rl_nsets(void)
{
	return (rl_slots + RL_WAYS - 1) / RL_WAYS;
}

static Size
rl_shmem_size(void)
{
	return add_size(offsetof(RlShared, slots),
					mul_size(mul_size(rl_nsets(), RL_WAYS), sizeof(RlEntry)));
}

/* Asks for the rate limiter's shared memory and lock (src/hooks.c, when preloaded). */
void
es_ratelimit_shmem_request(void)
{
	RequestAddinShmemSpace(rl_shmem_size());
	RequestNamedLWLockTranche("elfsofa_ratelimit", 1);
	rl_requested = true;
}

/* Creates (or attaches to) the buckets in shared memory (src/hooks.c). */
void
es_ratelimit_shmem_startup(void)
{
	bool		found;

	if (!rl_requested)
		return;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	rl_shared = ShmemInitStruct("elfsofa rate limit buckets", rl_shmem_size(), &found);
	if (!found)
	{
		memset(rl_shared, 0, rl_shmem_size());
		rl_shared->lock = &(GetNamedLWLockTranche("elfsofa_ratelimit"))->lock;
		rl_shared->nsets = rl_nsets();
	}
	LWLockRelease(AddinShmemInitLock);
}

/* A header name as PostgREST hands it over: lower-case token characters. */
static bool
rl_check_header(char **newval, void **extra, GucSource source)
{
	for (const char *c = *newval; c && *c; c++)
	{
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
		{
			GUC_check_errdetail("Header names are lower case letters, digits, \"-\" and \"_\"; \"%s\" is not.", *newval);
			return false;
		}
	}
	if (*newval && strlen(*newval) > 64)
	{
		GUC_check_errdetail("Header names are at most 64 characters.");
		return false;
	}
	return true;
}

/* Called once from _PG_init: settings, and shared memory when preloaded. */
void
es_ratelimit_init(void)
{
	DefineCustomIntVariable("elfsofa.rate_limit_per_minute",
							"Requests per minute api_guard() allows each signed-in user (JWT sub).",
							"Token bucket: bursts up to this many, refilled evenly over a minute; 0 turns the limit off. Range 0 to 1000000.",
							&rl_user_per_minute, 600, 0, 1000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("elfsofa.rate_limit_anon_per_minute",
							"Requests per minute api_guard() allows each client IP without a JWT sub.",
							"The IP comes from elfsofa.rate_limit_client_header; callers without one share one bucket; 0 turns the limit off. Range 0 to 1000000.",
							&rl_anon_per_minute, 120, 0, 1000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("elfsofa.max_request_bytes",
							"Largest request body (Content-Length) api_guard() lets a non-privileged caller send.",
							"Larger requests are refused with 22023 before their JSON is parsed; 0 turns the check off. Range 0 to 1073741823.",
							&max_request_bytes, 262144, 0, 1073741823,
							PGC_SUSET, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomEnumVariable("elfsofa.rate_limit_store",
							 "Where rate-limit buckets live: auto (shared memory when preloaded, else table) or table.",
							 NULL,
							 &rl_store, RL_STORE_AUTO, store_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("elfsofa.rate_limit_slots",
							"Rate-limit buckets kept in shared memory (needs shared_preload_libraries).",
							"Rounded up to a multiple of 8; a full set of 8 gives up its most refilled bucket. Range 100 to 1000000.",
							&rl_slots, 10000, 100, 1000000,
							ES_PGC_PRELOADED, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("elfsofa.rate_limit_client_header",
							   "Request header (lower case) in which the trusted proxy in front of PostgREST puts the client address.",
							   "Supabase's gateway appends the client to x-forwarded-for (the default); behind Cloudflare alone use cf-connecting-ip; empty trusts no header (all anonymous callers share one bucket).",
							   &rl_client_header, "x-forwarded-for",
							   PGC_SUSET, 0, rl_check_header, NULL, NULL);
	DefineCustomIntVariable("elfsofa.rate_limit_client_hop",
							"Which comma-separated address of the client header is the client's, counted from the right.",
							"1 (the default) is the last one, the one the trusted proxy appended; the ones before it are whatever the caller sent. Range 1 to 16.",
							&rl_client_hop, 1, 1, 16,
							PGC_SUSET, 0, NULL, NULL, NULL);
}

/* One token-bucket step on an entry; returns whether a token was taken. */
static bool
rl_step(RlEntry *e, double capacity, double rate_per_us, TimestampTz now, bool consume)
{
	double		elapsed = (now > e->last) ? (double) (now - e->last) : 0.0;

	e->capacity = capacity;
	e->rate_per_us = rate_per_us;
	e->tokens = Min(capacity, e->tokens + elapsed * rate_per_us);
	e->last = Max(now, e->last);
	if (e->tokens >= 1.0)
	{
		if (consume)
			e->tokens -= 1.0;
		return true;
	}
	return false;
}

/* Tokens an entry would hold now, as a share of its capacity (1 = fully refilled). */
static double
rl_fill(const RlEntry *e, TimestampTz now)
{
	double		elapsed = (now > e->last) ? (double) (now - e->last) : 0.0;

	return Min(1.0, (e->tokens + elapsed * e->rate_per_us) / e->capacity);
}

/*
 * The slot of key in its set: the bucket's own, else a free one, else the one
 * whose loss forgives least (the most refilled; of equals, the longest idle).
 * *found says whether it is the bucket's own.  Looks at RL_WAYS slots.
 */
static RlEntry *
rl_slot(const RlKey *key, TimestampTz now, bool *found)
{
	RlEntry    *set = &rl_shared->slots[(key->h1 % (uint64) rl_shared->nsets) * RL_WAYS];
	RlEntry    *victim = NULL;
	double		victim_fill = -1.0;

	for (int i = 0; i < RL_WAYS; i++)
	{
		RlEntry    *e = &set[i];
		double		fill;

		if (e->used && e->key.h1 == key->h1 && e->key.h2 == key->h2)
		{
			*found = true;
			return e;
		}
		fill = e->used ? rl_fill(e, now) : 2.0;
		if (fill > victim_fill || (fill == victim_fill && e->last < victim->last))
		{
			victim = e;
			victim_fill = fill;
		}
	}
	*found = false;
	return victim;
}

/* 128 bits of two seeded hashes, database included: collisions are negligible. */
static RlKey
rl_key(const char *bucket)
{
	RlKey		key;
	size_t		len = strlen(bucket);

	key.h1 = hash_bytes_extended((const unsigned char *) bucket, len, (uint64) MyDatabaseId);
	key.h2 = hash_bytes_extended((const unsigned char *) bucket, len,
								 UINT64CONST(0x9e3779b97f4a7c15) ^ (uint64) MyDatabaseId);
	return key;
}

/* Shared-memory store: one set of RL_WAYS slots under the lock, never a spill. */
static void
rl_take_shmem(const char *bucket, double capacity, double rate_per_us, RlResult *res)
{
	RlKey		key = rl_key(bucket);
	RlEntry    *e;
	bool		found;
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(rl_shared->lock, LW_EXCLUSIVE);
	e = rl_slot(&key, now, &found);
	if (!found)
	{
		e->key = key;
		e->used = true;
		e->tokens = capacity;
		e->last = now;
	}
	res->allowed = rl_step(e, capacity, rate_per_us, now, true);
	res->retry_after = res->allowed ? 0 : (1.0 - e->tokens) / rate_per_us / 1e6;
	LWLockRelease(rl_shared->lock);
}

static EsPlan take_plan = {
	"WITH c AS (SELECT $2::float8 AS cap, $3::float8 AS rate, $4::timestamptz AS now) "
	"INSERT INTO elfsofa.rate_limits AS r (bucket, tokens, allowed, updated_at) "
	"SELECT $1, c.cap - 1, true, c.now FROM c "
	"ON CONFLICT (bucket) DO UPDATE SET "
	"  tokens = (SELECT CASE WHEN f.t >= 1 THEN f.t - 1 ELSE f.t END FROM "
	"            (SELECT least($2, r.tokens + greatest(0, extract(epoch FROM $4 - r.updated_at)::float8) * $3) AS t) f), "
	"  allowed = (SELECT least($2, r.tokens + greatest(0, extract(epoch FROM $4 - r.updated_at)::float8) * $3) >= 1), "
	"  updated_at = greatest(r.updated_at, $4) "
	"RETURNING allowed, tokens",
	4, {TEXTOID, FLOAT8OID, FLOAT8OID, TIMESTAMPTZOID}
};

static EsPlan peek_plan = {
	"SELECT least($2, tokens + greatest(0, extract(epoch FROM $4 - updated_at)::float8) * $3) "
	"  FROM elfsofa.rate_limits WHERE bucket = $1 AND $3 IS NOT NULL",
	4, {TEXTOID, FLOAT8OID, FLOAT8OID, TIMESTAMPTZOID}
};

/* Table store: one UPSERT; read-only transactions (PostgREST GETs) only check. */
static void
rl_take_table(const char *bucket, double capacity, double rate_per_us, RlResult *res)
{
	double		rate_per_s = rate_per_us * 1e6;
	Datum		values[4];
	bool		isnull;
	double		tokens;

	values[0] = CStringGetTextDatum(bucket);
	values[1] = Float8GetDatum(capacity);
	values[2] = Float8GetDatum(rate_per_s);
	values[3] = TimestampTzGetDatum(GetCurrentTimestamp());

	SPI_connect();
	if (XactReadOnly || RecoveryInProgress())
	{
		es_exec(&peek_plan, values, NULL, true, 1);
		tokens = capacity;
		if (SPI_processed > 0)
			tokens = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		res->allowed = tokens >= 1.0;
	}
	else
	{
		es_exec(&take_plan, values, NULL, false, 1);
		res->allowed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		tokens = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_finish();
	res->retry_after = res->allowed ? 0 : (1.0 - tokens) / rate_per_s;
}

static void
rl_take(const char *bucket, int32 max_requests, int64 per_us, RlResult *res)
{
	double		capacity = (double) max_requests;
	double		rate_per_us = capacity / (double) per_us;

	if (rl_store == RL_STORE_AUTO && rl_shared != NULL)
		rl_take_shmem(bucket, capacity, rate_per_us, res);
	else
		rl_take_table(bucket, capacity, rate_per_us, res);
}

/* elfsofa.rate_limit(bucket, max_requests, per): true when this request may go ahead. */
Datum
elfsofa_rate_limit(PG_FUNCTION_ARGS)
{
	char	   *bucket = es_require_text(fcinfo, 0, "bucket", RL_MAX_BUCKET_LEN);
	int32		max_requests;
	Interval   *per;
	int64		per_us;
	RlResult	res;

	if (PG_ARGISNULL(1) || PG_GETARG_INT32(1) < 1 || PG_GETARG_INT32(1) > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_requests must be between 1 and 1000000"),
				 errdetail("Argument \"max_requests\" was %s.",
						   PG_ARGISNULL(1) ? "null" : psprintf("%d", PG_GETARG_INT32(1)))));
	max_requests = PG_GETARG_INT32(1);
	es_arg_not_null(fcinfo, 2, "per");
	per = PG_GETARG_INTERVAL_P(2);
	if (per->month != 0 || per->day < 0 || per->day > 31)
		per_us = -1;
	else
		per_us = per->time + (int64) per->day * USECS_PER_DAY;
	if (per_us < 1000 || per_us > 31 * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("per must be between 1 millisecond and 31 days"),
				 errdetail("Argument \"per\" was %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out, PG_GETARG_DATUM(2))))));

	rl_take(bucket, max_requests, per_us, &res);
	PG_RETURN_BOOL(res.allowed);
}

/* PostgREST's request.headers (lower-case names) as Jsonb, or NULL. */
static Jsonb *
request_headers(void)
{
	const char *raw = GetConfigOption("request.headers", true, false);

	if (raw == NULL || raw[0] == '\0')
		return NULL;
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(raw)));
}

/*
 * The client address: the rate_limit_client_hop-th comma-separated entry from
 * the right of the trusted header, or NULL when it is missing, too short or
 * not an address (hex digits, "." and ":" only: IPv4 or IPv6).
 */
static char *
client_ip(Jsonb *headers)
{
	char	   *value;
	char	   *end;
	char	   *start;
	int			hop;

	if (headers == NULL || rl_client_header == NULL || rl_client_header[0] == '\0')
		return NULL;
	value = es_jsonb_get_text(headers, rl_client_header);
	if (value == NULL)
		return NULL;
	end = value + strlen(value);
	for (hop = 1;; hop++)
	{
		start = end;
		while (start > value && start[-1] != ',')
			start--;
		if (hop == rl_client_hop)
			break;
		if (start == value)
			return NULL;		/* fewer entries than hops: not from our proxy */
		end = start - 1;
	}
	*end = '\0';
	while (*start == ' ' || *start == '\t')
		start++;
	end = start + strcspn(start, " \t");
	*end = '\0';
	if (start[0] == '\0' || end - start > 45 ||
		strspn(start, "0123456789abcdefABCDEF.:") != (size_t) (end - start))
		return NULL;
	return start;
}

/* Refuses bodies over elfsofa.max_request_bytes (by Content-Length) before anything parses them. */
static void
check_request_size(Jsonb *headers)
{
	char	   *len = es_jsonb_get_text(headers, "content-length");
	char	   *end;
	long long	n;

	if (len == NULL || max_request_bytes <= 0)
		return;
	errno = 0;
	n = strtoll(len, &end, 10);
	if (errno == 0 && *end == '\0' && n >= 0 && n <= max_request_bytes)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("request body is too large"),
			 errdetail("Header \"content-length\" was \"%.40s\"; at most %d bytes are allowed.", len, max_request_bytes),
			 errhint("An order has at most 100 lines; send large imports with the service role.")));
}

/*
 * elfsofa.api_guard(): PostgREST db-pre-request hook.  Limits each JWT sub,
 * else each client IP, else the one bucket of callers without an address;
 * privileged roles (service_role) are not limited.
 */
Datum
elfsofa_api_guard(PG_FUNCTION_ARGS)
{
	char	   *sub;
	char	   *bucket;
	int			per_minute;
	RlResult	res;
	int			retry;
	char		header[64];
	Jsonb	   *headers;

	if (es_role_is_privileged())
		PG_RETURN_VOID();

	headers = request_headers();
	sub = es_jsonb_get_text(es_jwt_claims(), "sub");
	if (sub != NULL && sub[0] != '\0')
	{
		per_minute = rl_user_per_minute;
		bucket = psprintf("user:%.100s", sub);
	}
	else
	{
		char	   *ip = client_ip(headers);

		per_minute = rl_anon_per_minute;
		bucket = ip ? psprintf("ip:%s", ip) : pstrdup(RL_NO_ADDRESS_BUCKET);
	}
	if (per_minute <= 0)
		res.allowed = true;
	else
		rl_take(bucket, per_minute, USECS_PER_MINUTE, &res);
	if (res.allowed)
	{
		check_request_size(headers);
		PG_RETURN_VOID();
	}

	retry = (int) ceil(res.retry_after);
	if (retry < 1)
		retry = 1;
	snprintf(header, sizeof(header), "[{\"Retry-After\": \"%d\"}]", retry);
	(void) set_config_option("response.headers", header, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	ereport(ERROR,
			(errcode(ES_ERRCODE_RATE_LIMITED),
			 errmsg("rate limit exceeded"),
			 errdetail("Bucket \"%s\" allows %d requests per minute.", bucket, per_minute),
			 retry == 1 ? errhint("Retry after 1 second.") : errhint("Retry after %d seconds.", retry)));
	PG_RETURN_VOID();
}

static EsPlan reset_plan = {
	"DELETE FROM elfsofa.rate_limits WHERE $1::text IS NULL OR bucket = $1",
	1, {TEXTOID}
};

/*
 * elfsofa.rate_limit_reset(bucket): forgives one bucket, or every bucket (of
 * every database, in shared memory) when NULL; returns how many were dropped.
 */
Datum
elfsofa_rate_limit_reset(PG_FUNCTION_ARGS)
{
	int64		n = 0;
	Datum		arg = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);

	if (rl_shared != NULL)
	{
		RlKey		key;
		RlEntry    *one = NULL;
		bool		found = false;

		if (!PG_ARGISNULL(0))
			key = rl_key(text_to_cstring(PG_GETARG_TEXT_PP(0)));
		LWLockAcquire(rl_shared->lock, LW_EXCLUSIVE);
		if (!PG_ARGISNULL(0))
			one = rl_slot(&key, GetCurrentTimestamp(), &found);
		if (found)
		{
			one->used = false;
			n++;
		}
		for (int i = 0; PG_ARGISNULL(0) && i < rl_shared->nsets * RL_WAYS; i++)
		{
			n += rl_shared->slots[i].used ? 1 : 0;
			rl_shared->slots[i].used = false;
		}
		LWLockRelease(rl_shared->lock);
	}
	SPI_connect();
	es_exec(&reset_plan, &arg, PG_ARGISNULL(0) ? "n" : NULL, false, 0);
	n += SPI_processed;
	SPI_finish();
	PG_RETURN_INT64(n);
}
