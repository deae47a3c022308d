/*
 * part_period.c — periods of the partition manager: a part_interval read as
 * n days, weeks or months, the period that holds a day, a period's bounds in
 * the control column's own domain, and the name of its partition.
 *
 * Periods are counted in local days of the set's own time zone (stored when
 * it was registered), so partitions start at that zone's midnight whatever
 * the session's TimeZone; bound text is ISO in UTC, so neither DateStyle nor
 * TimeZone changes the DDL that maintenance runs.
 */
#include "partitions/partitions.h"

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

/* Turns an interval into a period; false when it is not 1 day/week/month/year or a multiple. */
bool
part_parse_period(Interval *iv, PeriodUnit *unit, int *n)
{
	if (iv->time != 0)
		return false;
	if (iv->month > 0 && iv->day == 0)
	{
		if (iv->month > 1200)
			return false;
		*unit = PU_MONTH;
		*n = iv->month;
		return true;
	}
	if (iv->month == 0 && iv->day > 0)
	{
		if (iv->day % 7 == 0)
		{
			if (iv->day / 7 > 520)
				return false;
			*unit = PU_WEEK;
			*n = iv->day / 7;
		}
		else
		{
			if (iv->day > 3660)
				return false;
			*unit = PU_DAY;
			*n = iv->day;
		}
		return true;
	}
	return false;
}

static int32
floor_mod(int32 a, int32 b)
{
	int32		m = a % b;

	return m < 0 ? m + b : m;
}

/* First day (days since 2000-01-01, local) of the period that contains day d. */
int32
part_period_start(int32 d, PeriodUnit unit, int n)
{
	int			y,
				m,
				dd;

	switch (unit)
	{
		case PU_DAY:
			return d - floor_mod(d, n);
		case PU_WEEK:
			{
				/* 2000-01-03 was a Monday: weeks counted from there */
				int32		w = d - 2;
				int32		wk = (w - floor_mod(w, 7)) / 7;

				wk -= floor_mod(wk, n);
				return wk * 7 + 2;
			}
		case PU_MONTH:
			{
				int32		idx;

				j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &dd);
				idx = y * 12 + (m - 1);
				idx -= floor_mod(idx, n);
				return date2j(idx / 12, idx % 12 + 1, 1) - POSTGRES_EPOCH_JDATE;
			}
	}
	return d;
}

int32
part_period_next(int32 start, PeriodUnit unit, int n)
{
	int			y,
				m,
				dd;
	int32		idx;

	if (unit == PU_DAY)
		return start + n;
	if (unit == PU_WEEK)
		return start + 7 * n;
	j2date(start + POSTGRES_EPOCH_JDATE, &y, &m, &dd);
	idx = y * 12 + (m - 1) + n;
	return date2j(idx / 12, idx % 12 + 1, 1) - POSTGRES_EPOCH_JDATE;
}

/* Local midnight of day d as a value of the key type. */
int64
part_day_to_key(PartSet *s, int32 d)
{
	Timestamp	local;

	if (s->keytype == DATEOID)
		return d;
	local = (Timestamp) d * USECS_PER_DAY;
	return DatumGetTimestampTz(DirectFunctionCall2(timestamp_zone,
												   CStringGetTextDatum(s->time_zone),
												   TimestampGetDatum(local)));
}

/* now() - retention (or now()) as a value of the key type, computed in the set's time zone. */
int64
part_cutoff_key(PartSet *s, Interval *minus)
{
	Timestamp	local;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	local = DatumGetTimestamp(DirectFunctionCall2(timestamptz_zone,
												  CStringGetTextDatum(s->time_zone),
												  TimestampTzGetDatum(now)));
	if (minus)
		local = DatumGetTimestamp(DirectFunctionCall2(timestamp_mi_interval,
													  TimestampGetDatum(local),
													  IntervalPGetDatum(minus)));
	if (s->keytype == DATEOID)
	{
		/* a date partition [lo, hi) is wholly older than local iff hi <= floor(local) days */
		int64		days = local / USECS_PER_DAY;

		if (local < 0 && local % USECS_PER_DAY != 0)
			days--;
		return days;
	}
	return DatumGetTimestampTz(DirectFunctionCall2(timestamp_zone,
												   CStringGetTextDatum(s->time_zone),
												   TimestampGetDatum(local)));
}

/* Today's local day number in the set's time zone. */
int32
part_local_today(PartSet *s)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Timestamp	local;
	int64		days;

	local = DatumGetTimestamp(DirectFunctionCall2(timestamptz_zone,
												  CStringGetTextDatum(s->time_zone),
												  TimestampTzGetDatum(now)));
	days = local / USECS_PER_DAY;
	if (local < 0 && local % USECS_PER_DAY != 0)
		days--;
	return (int32) days;
}

/* Text of a key value, independent of DateStyle and TimeZone (ISO, UTC). */
char *
part_key_text(Oid keytype, int64 v)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (keytype == DATEOID)
	{
		j2date((int) v + POSTGRES_EPOCH_JDATE, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
		return psprintf("%04d-%02d-%02d", tm.tm_year, tm.tm_mon, tm.tm_mday);
	}
	if (timestamp2tm((Timestamp) v, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("partition bound out of range")));
	return psprintf("%04d-%02d-%02d %02d:%02d:%02d.%06d+00",
					tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
}

/* SQL literal of a key value. */
char *
part_key_literal(Oid keytype, int64 v)
{
	return quote_literal_cstr(part_key_text(keytype, v));
}

/* <table>_pYYYY_MM_DD / _pYYYY_wWW / _pYYYY_MM / _pYYYY, clipped to NAMEDATALEN. */
char *
part_partition_name(const char *base, PartSet *s, int32 start)
{
	int			y,
				m,
				d;
	char		suffix[32];
	int			baselen;

	j2date(start + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	if (s->unit == PU_DAY)
		snprintf(suffix, sizeof(suffix), "_p%04d_%02d_%02d", y, m, d);
	else if (s->unit == PU_WEEK)
		snprintf(suffix, sizeof(suffix), "_p%04d_w%02d", date2isoyear(y, m, d), date2isoweek(y, m, d));
	else if (s->n % 12 == 0)
		snprintf(suffix, sizeof(suffix), "_p%04d", y);
	else
		snprintf(suffix, sizeof(suffix), "_p%04d_%02d", y, m);
	baselen = strlen(base);
	if (baselen + strlen(suffix) > NAMEDATALEN - 1)
		baselen = pg_mbcliplen(base, baselen, NAMEDATALEN - 1 - strlen(suffix));
	return psprintf("%.*s%s", baselen, base, suffix);
}
