/*
 * errcodes.h — the SQLSTATEs of business errors and the bounds of "absurd" input.
 */
#ifndef ES_ERRCODES_H
#define ES_ERRCODES_H

#include "postgres.h"

#include "base/compat.h"

/* Business SQLSTATEs: PostgREST maps PTxyz to HTTP status xyz. */
#define ES_ERRCODE_NOT_FOUND		MAKE_SQLSTATE('P','T','4','0','4')
#define ES_ERRCODE_CONFLICT			MAKE_SQLSTATE('P','T','4','0','9')
#define ES_ERRCODE_UNPROCESSABLE	MAKE_SQLSTATE('P','T','4','2','2')
#define ES_ERRCODE_RATE_LIMITED		MAKE_SQLSTATE('P','T','4','2','9')

/* Upper bounds that make a value "absurd" rather than merely large. */
#define ES_MAX_QUANTITY		100000
#define ES_MAX_TEXT_LEN		1000

#endif							/* ES_ERRCODES_H */
