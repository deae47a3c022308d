/*
 * audit_rowjson.c — row images of audited tables as jsonb, straight from the
 * tuple's datums.
 *
 * Objects are written directly in jsonb's binary form, with keys in jsonb's
 * own key order, so the result is byte for byte what to_jsonb builds without
 * building a JsonbValue tree first.
 */
#include "audit/audit.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"

/* ---------------------------------------------------------------------
 * Row images as jsonb, straight from the datums
 * --------------------------------------------------------------------- */

/*
 * Objects are written straight into jsonb's on-disk form (utils/jsonb.h): the
 * container header, one JEntry per key and per value, the key bytes, then the
 * value bytes, numerics and nested containers int-aligned.  Building a
 * JsonbValue tree with pushJsonbValue and converting it cost as much as the
 * values themselves.  Keys come in jsonb's key order (length, then bytes), so
 * the result is byte for byte what to_jsonb builds.
 */
typedef struct RowJsonBuild
{
	StringInfoData buf;
	int			n;				/* pairs */
	int			next;			/* next value to write */
	int			totallen;		/* data bytes written so far */
} RowJsonBuild;

#define ROWJSON_ENTRY(jb, k) (((JEntry *) ((jb)->buf.data + VARHDRSZ + sizeof(uint32)))[k])

/* Starts an object of n pairs whose keys are cols[order[0..n-1]]. */
static void
rowjson_begin(RowJsonBuild *jb, AuditCol *cols, const int *order, int n)
{
	uint32		header = (uint32) n | JB_FOBJECT;
	int			keybytes = 0;

	for (int k = 0; k < n; k++)
		keybytes += cols[order[k]].namelen;
	initStringInfo(&jb->buf);
	enlargeStringInfo(&jb->buf, VARHDRSZ + sizeof(uint32) + sizeof(JEntry) * 2 * n + keybytes + 16 * n);
	jb->buf.len = VARHDRSZ;
	appendBinaryStringInfoNT(&jb->buf, (char *) &header, sizeof(uint32));
	jb->buf.len += sizeof(JEntry) * 2 * n;
	jb->n = n;
	jb->next = 0;
	jb->totallen = 0;
	for (int k = 0; k < n; k++)
	{
		AuditCol   *c = &cols[order[k]];

		appendBinaryStringInfoNT(&jb->buf, c->name, c->namelen);
		jb->totallen += c->namelen;
		ROWJSON_ENTRY(jb, k) = (k % JB_OFFSET_STRIDE) == 0
			? (JEntry) jb->totallen | JENTRY_HAS_OFF : (JEntry) c->namelen;
	}
}

/* Pads to an int boundary; returns the padding written. */
static int
rowjson_pad(RowJsonBuild *jb)
{
	int			pad = INTALIGN(jb->buf.len) - jb->buf.len;

	for (int p = 0; p < pad; p++)
		appendStringInfoCharMacro(&jb->buf, '\0');
	return pad;
}

/* Records the next value's JEntry: its type and the bytes it took. */
static void
rowjson_entry(RowJsonBuild *jb, uint32 type, int len)
{
	int			k = jb->n + jb->next++;

	jb->totallen += len;
	if (jb->totallen > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("audited row image exceeds the maximum jsonb object size of %u bytes",
						JENTRY_OFFLENMASK)));
	ROWJSON_ENTRY(jb, k) = (k % JB_OFFSET_STRIDE) == 0
		? type | (JEntry) jb->totallen | JENTRY_HAS_OFF : type | (JEntry) len;
}

static void
rowjson_string(RowJsonBuild *jb, const char *s, int len)
{
	appendBinaryStringInfoNT(&jb->buf, s, len);
	rowjson_entry(jb, JENTRY_ISSTRING, len);
}

/*
 * A numeric with any varlena header, stored with a 4-byte one (as jsonb's
 * own numerics are).  NaN and infinities are not JSON numbers: false, and
 * nothing written.
 */
static bool
rowjson_numeric(RowJsonBuild *jb, struct varlena *num)
{
	int			start = jb->buf.len;
	int			pad = rowjson_pad(jb);
	int			datalen = VARSIZE_ANY_EXHDR(num);
	int			at;
	Numeric		stored;

	enlargeStringInfo(&jb->buf, VARHDRSZ + datalen);
	at = jb->buf.len;
	SET_VARSIZE(jb->buf.data + at, VARHDRSZ + datalen);
	memcpy(jb->buf.data + at + VARHDRSZ, VARDATA_ANY(num), datalen);
	jb->buf.len += VARHDRSZ + datalen;
	stored = (Numeric) (jb->buf.data + at);
	if (numeric_is_nan(stored) || numeric_is_inf(stored))
	{
		jb->buf.len = start;
		return false;
	}
	rowjson_entry(jb, JENTRY_ISNUMERIC, pad + VARHDRSZ + datalen);
	return true;
}

/* A scalar taken out of a jsonb value. */
static void
rowjson_scalar(RowJsonBuild *jb, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			rowjson_entry(jb, JENTRY_ISNULL, 0);
			break;
		case jbvBool:
			rowjson_entry(jb, v->val.boolean ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE, 0);
			break;
		case jbvString:
			rowjson_string(jb, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			if (!rowjson_numeric(jb, (struct varlena *) v->val.numeric))
				rowjson_string(jb, "NaN", 3);	/* as jsonb itself stores a NaN */
			break;
		default:
			elog(ERROR, "unexpected jsonb scalar type %d", (int) v->type);
	}
}

/*
 * A jsonb value: a container is copied as it is (its offsets are relative to
 * itself and its padding to an int boundary, where it is placed again); a
 * raw scalar is unwrapped.
 */
static void
rowjson_jsonb(RowJsonBuild *jb, Jsonb *j)
{
	int			pad;
	int			len;

	if (JB_ROOT_IS_SCALAR(j))
	{
		JsonbValue	v;

		JsonbExtractScalar(&j->root, &v);
		rowjson_scalar(jb, &v);
		return;
	}
	pad = rowjson_pad(jb);
	len = VARSIZE(j) - VARHDRSZ;
	appendBinaryStringInfoNT(&jb->buf, (char *) &j->root, len);
	rowjson_entry(jb, JENTRY_ISCONTAINER, pad + len);
}

/* The next value: one column, rendered the way to_jsonb renders it. */
static void
rowjson_column(RowJsonBuild *jb, AuditCol *c, Datum d, bool isnull)
{
	if (isnull)
	{
		rowjson_entry(jb, JENTRY_ISNULL, 0);
		return;
	}
	switch (c->cat)
	{
		case JC_BOOL:
			rowjson_entry(jb, DatumGetBool(d) ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE, 0);
			return;
		case JC_INT:
			{
				int64		n = c->basetype == INT2OID ? DatumGetInt16(d)
					: c->basetype == INT4OID ? DatumGetInt32(d) : DatumGetInt64(d);
				Numeric		num = int64_to_numeric(n);

				rowjson_numeric(jb, (struct varlena *) num);
				pfree(num);
				return;
			}
		case JC_NUMERIC:
			{
				struct varlena *num = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));

				if (!rowjson_numeric(jb, num))
				{
					char	   *s = OutputFunctionCall(&c->fn, d);

					rowjson_string(jb, s, strlen(s));
				}
				return;
			}
		case JC_FLOAT:
			{
				char	   *s = OutputFunctionCall(&c->fn, d);
				double		f = c->basetype == FLOAT4OID ? DatumGetFloat4(d) : DatumGetFloat8(d);

				if (isnan(f) || isinf(f))
					rowjson_string(jb, s, strlen(s));
				else
					rowjson_numeric(jb, (struct varlena *) DatumGetPointer(
						DirectFunctionCall3(numeric_in, CStringGetDatum(s),
											ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1))));
				return;
			}
		case JC_DATETIME:
			{
				char		buf[MAXDATELEN + 1];

				JsonEncodeDateTime(buf, d, c->basetype, NULL);
				rowjson_string(jb, buf, strlen(buf));
				return;
			}
		case JC_JSONB:
			{
				struct varlena *j = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));
				uint32		header;
				int			pad;
				int			len;

				/* a short header leaves the container unaligned: only copy it */
				memcpy(&header, VARDATA_ANY(j), sizeof(uint32));
				if ((header & JB_FSCALAR) != 0)
				{
					rowjson_jsonb(jb, DatumGetJsonbP(d));
					return;
				}
				pad = rowjson_pad(jb);
				len = VARSIZE_ANY_EXHDR(j);
				appendBinaryStringInfoNT(&jb->buf, VARDATA_ANY(j), len);
				rowjson_entry(jb, JENTRY_ISCONTAINER, pad + len);
				return;
			}
		case JC_TEXT:
			{
				struct varlena *t = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));

				rowjson_string(jb, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				return;
			}
		case JC_OUTPUT:
			{
				char	   *s = OutputFunctionCall(&c->fn, d);

				rowjson_string(jb, s, strlen(s));
				return;
			}
		case JC_TO_JSONB:
			rowjson_jsonb(jb, DatumGetJsonbP(FunctionCall1(&c->fn, d)));
			return;
	}
	elog(ERROR, "unexpected json category %d", (int) c->cat);
}

static Jsonb *
rowjson_finish(RowJsonBuild *jb)
{
	Assert(jb->next == jb->n);
	SET_VARSIZE(jb->buf.data, jb->buf.len);
	return (Jsonb *) jb->buf.data;
}

/* Columns cols[order[0..n-1]] of a row as a jsonb object. */
Jsonb *
audit_json(AuditRel *e, const int *order, int n, Datum *values, bool *nulls)
{
	RowJsonBuild		jb;

	rowjson_begin(&jb, e->cols, order, n);
	for (int k = 0; k < n; k++)
		rowjson_column(&jb, &e->cols[order[k]], values[order[k]], nulls[order[k]]);
	return rowjson_finish(&jb);
}

/* Whole row (INSERT/DELETE) as a jsonb object, excluded columns left out. */
Jsonb *
audit_row_json(AuditRel *e, Datum *values, bool *nulls)
{
	return audit_json(e, e->keyorder, e->nkeyorder, values, nulls);
}

/* The row's key as a jsonb object, or NULL when the table has none. */
Jsonb *
audit_key_json(AuditRel *e, Datum *values, bool *nulls)
{
	if (e->npk == 0)
		return NULL;
	return audit_json(e, e->pkorder, e->npk, values, nulls);
}

/* ---------------------------------------------------------------------
 * A row's image read back from its table
 * --------------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(es_audit_row_image);

/*
 * SQL: elfsofa.audit_row_image(tbl, pk) — the row of audited table tbl whose
 * primary key is pk ({"id": 42}), as its audit rows show it (excluded columns
 * left out, byte for byte what the trigger writes), or NULL when the table
 * holds no such row or is not audited.  audit_history() starts the story of a
 * row whose INSERT was recorded by key only (AUDIT_ARG_INSERT_KEY) with it.
 * Runs as the caller: reading the row takes the caller's rights on tbl.
 */
Datum
es_audit_row_image(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Jsonb	   *pk;
	Relation	rel;
	Trigger    *tg = NULL;
	AuditRel   *e;
	StringInfoData sql;
	TupleDesc	desc;
	Oid			argtype = JSONBOID;
	Datum		arg;
	Jsonb	   *image = NULL;
	MemoryContext outer = CurrentMemoryContext;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	relid = PG_GETARG_OID(0);
	pk = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_OBJECT(pk))
		es_bad_input("pk", "pk must be a JSON object", "must name the key columns, e.g. {\"id\": 42}");
	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		PG_RETURN_NULL();
	if (rel->trigdesc)
		for (int i = 0; i < rel->trigdesc->numtriggers && tg == NULL; i++)
			if (strcmp(rel->trigdesc->triggers[i].tgname, AUDIT_ROW_TRIGGER) == 0)
				tg = &rel->trigdesc->triggers[i];
	if (tg == NULL)
	{
		relation_close(rel, AccessShareLock);
		PG_RETURN_NULL();
	}
	e = audit_get_rel(rel, tg);
	desc = RelationGetDescr(rel);

	/* the key's columns, each compared with its value in pk cast to the column's type */
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT t FROM %s t WHERE true",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												RelationGetRelationName(rel)));
	for (int k = 0; k < e->npk; k++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, e->pk[k] - 1);

		appendStringInfo(&sql, " AND t.%s = ($1 ->> %s)::%s",
						 quote_identifier(NameStr(att->attname)),
						 quote_literal_cstr(NameStr(att->attname)),
						 format_type_be_qualified(att->atttypid));
	}
	arg = JsonbPGetDatum(pk);
	SPI_connect();
	if (e->npk > 0 && SPI_execute_with_args(sql.data, 1, &argtype, &arg, NULL, true, 2) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		bool		isnull;
		Datum		row = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			HeapTupleHeader th = DatumGetHeapTupleHeader(row);
			HeapTupleData tuple;
			Datum	   *values = palloc(sizeof(Datum) * desc->natts);
			bool	   *nulls = palloc(sizeof(bool) * desc->natts);
			MemoryContext spi;

			tuple.t_len = HeapTupleHeaderGetDatumLength(th);
			ItemPointerSetInvalid(&tuple.t_self);
			tuple.t_tableOid = InvalidOid;
			tuple.t_data = th;
			heap_deform_tuple(&tuple, desc, values, nulls);
			spi = MemoryContextSwitchTo(outer);
			image = audit_row_json(e, values, nulls);
			MemoryContextSwitchTo(spi);
		}
	}
	SPI_finish();
	relation_close(rel, AccessShareLock);
	if (image == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(image);
}
