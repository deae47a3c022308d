/*
 * elfsofa-listen — print every committed elfsofa event as one JSON line.
 *
 * It LISTENs on channel elfsofa_events and catches up through
 * elfsofa.events_since(last_id), which hands events out in id order and
 * never past an id that an in-flight transaction may still commit.  So after
 * a restart or a lost connection it catches up from its last id with no gap,
 * and it prints no id twice (ids only grow; with --state-file the last
 * printed id survives restarts, and when stdout is a file it appends to,
 * the last line there counts too, should it die between the two).  LISTEN
 * is issued before every catch-up, so nothing committed in between is
 * missed.
 *
 * Live events: where elfsofa's background publisher sends the NOTIFYs
 * (publisher_status() says "worker"), it sends every committed event once, in
 * id order, and only once no earlier id can still commit.  By default a
 * payload only names the event (id, topic, key: anyone who can connect may
 * LISTEN), so a payload from the publisher's process (checked by the
 * sender's pid: anyone may NOTIFY the channel) that follows last_id starts a
 * catch-up at once; with elfsofa.notify_data on, a payload that carries the
 * data is printed as it is, with no query.  A truncated payload, one from
 * another process, or silence for half a second falls back to a catch-up.  Where each writer NOTIFYs at commit (commit
 * mode), notifications arrive in commit order, not id order: each one is only
 * a wake-up for a catch-up.
 *
 * Every line is one event's JSON: {"id", "topic", "key", "data"}.
 *
 * usage: elfsofa-listen [--from-id N] [--state-file F] [--timing] [--min-interval MS] [CONNINFO]
 *   CONNINFO defaults to the PG* environment (PGHOST, PGPORT, PGDATABASE, ...).
 *   Without --from-id or a state file it starts after the newest committed event.
 *   --timing adds "latency_ms": delivery time minus the event's created_at
 *   (it reads created_at, so every event then comes through events_since).
 *   --min-interval spaces events_since queries under load (default 10 ms).
 * SIGTERM/SIGINT stop it after the batch being printed; its state is saved.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "libpq-fe.h"

#define BATCH "5000"
/*
 * How long an announced id that events_since has not handed out yet keeps us
 * polling every 5 ms (then every 0.5 s, as when idle).  Past it the id was
 * forged, or its wait is long enough for 0.5 s steps.
 */
#define NOTIFIED_HINT_SECONDS 2.0

static volatile sig_atomic_t stop_requested = 0;
static long long last_id = -1;
static long long notified_max = 0;
static double notified_at = 0;	/* when notified_max was raised */
static int	publisher_pid = 0;	/* >0: print this process's payloads directly */
static const char *state_file = NULL;
static int	timing = 0;
static double min_interval = 0.010;
static double last_query = 0;

static void
on_signal(int sig)
{
	(void) sig;
	stop_requested = 1;
}

static double
now_seconds(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec + tv.tv_usec / 1e6;
}

static void
log_msg(const char *msg, const char *detail)
{
	fprintf(stderr, "elfsofa-listen: %s%s%s\n", msg, detail ? ": " : "", detail ? detail : "");
}

/* Saves last_id atomically (write, then rename). */
static void
save_state(void)
{
	char		tmp[4096];
	FILE	   *f;

	if (state_file == NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", state_file);
	f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%lld\n", last_id) < 0 || fclose(f) != 0 || rename(tmp, state_file) != 0)
		log_msg("could not save state", strerror(errno));
}

static void
load_state(void)
{
	FILE	   *f;
	long long	v;

	if (state_file == NULL || (f = fopen(state_file, "r")) == NULL)
		return;
	if (fscanf(f, "%lld", &v) == 1 && v >= 0)
		last_id = v;
	fclose(f);
}

/*
 * When stdout is a regular file (elfsofa-listen >>events.jsonl), its last
 * line is the last event printed: a kill between printing a line and saving
 * the state file must not print that event again after a restart.  Raises
 * last_id to the id of the last complete line.
 */
static void
resume_after_output(void)
{
	struct stat st;
	char		buf[65536];
	off_t		from;
	ssize_t		n;
	char	   *end;
	char	   *line;
	int			fd;

	if (fstat(STDOUT_FILENO, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
		return;
	from = st.st_size > (off_t) sizeof(buf) - 1 ? st.st_size - (off_t) sizeof(buf) + 1 : 0;
	/* (>> opens it write-only: read it through a descriptor of our own) */
	fd = open("/proc/self/fd/1", O_RDONLY);
	if (fd < 0)
		return;
	n = pread(fd, buf, sizeof(buf) - 1, from);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	/* a line cut by the kill stays alone on its line (a reader skips it) */
	if (buf[n - 1] != '\n')
	{
		fputc('\n', stdout);
		fflush(stdout);
	}
	/* the last complete line */
	end = strrchr(buf, '\n');
	if (end == NULL)
		return;
	*end = '\0';
	line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	if (strncmp(line, "{\"id\": ", 7) == 0 && atoll(line + 7) > last_id)
		last_id = atoll(line + 7);
}

/*
 * The catch-up query, prepared once per connection: it runs up to every
 * --min-interval under load, and parsing and planning it each time would
 * cost the server more than fetching the events.
 */
static int
prepare_catch_up(PGconn *conn)
{
	PGresult   *res = PQprepare(conn, "elfsofa_listen_since",
								"SELECT id, '{\"id\": ' || id || ', \"topic\": ' || to_json(topic)"
								" || ', \"key\": ' || coalesce(to_json(key)::text, 'null') || ', \"data\": ' || data || '}',"
								" extract(epoch FROM created_at)::float8"
								" FROM elfsofa.events_since($1::bigint, " BATCH ")",
								1, NULL);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		log_msg("could not prepare the events_since query", PQerrorMessage(conn));
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

/*
 * Prints every event after last_id that events_since hands out.  Returns 0
 * when caught up, -1 when the connection failed.
 */
static int
catch_up(PGconn *conn)
{
	for (;;)
	{
		char		after[32];
		const char *params[1] = {after};
		PGresult   *res;
		int			n;
		double		now;

		snprintf(after, sizeof(after), "%lld", last_id);
		res = PQexecPrepared(conn, "elfsofa_listen_since", 1, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			log_msg("events_since failed", PQerrorMessage(conn));
			PQclear(res);
			return -1;
		}
		n = PQntuples(res);
		now = now_seconds();
		for (int i = 0; i < n; i++)
		{
			long long	id = atoll(PQgetvalue(res, i, 0));
			const char *json = PQgetvalue(res, i, 1);

			if (id <= last_id)
				continue;		/* cannot happen with events_since; never print twice */
			if (timing)
				printf("%.*s, \"latency_ms\": %.3f}\n", (int) strlen(json) - 1, json,
					   (now - atof(PQgetvalue(res, i, 2))) * 1000.0);
			else
				printf("%s\n", json);
			last_id = id;
		}
		PQclear(res);
		if (n > 0)
		{
			fflush(stdout);
			save_state();
		}
		if (n < atoi(BATCH))
			return 0;
	}
}

/* Starting point when neither --from-id nor a state file says: after the newest event. */
static int
start_at_newest(PGconn *conn)
{
	PGresult   *res = PQexec(conn, "SELECT coalesce(max(id), 0) FROM elfsofa.events");

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		log_msg("could not read the newest event id", PQerrorMessage(conn));
		PQclear(res);
		return -1;
	}
	last_id = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/*
 * Whether the publisher sends this database's events, and its pid (0 when
 * not, or with --timing).  Returns -1 when the connection failed.
 */
static int
find_publisher(PGconn *conn)
{
	PGresult   *res;

	publisher_pid = 0;
	if (timing)
		return 0;
	res = PQexec(conn, "SELECT s->>'mode', s->>'worker_pid' FROM elfsofa.publisher_status() s");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		log_msg("publisher_status failed", PQerrorMessage(conn));
		PQclear(res);
		return -1;
	}
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "worker") == 0 && !PQgetisnull(res, 0, 1))
		publisher_pid = atoi(PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

/* After printing: make the lines visible and remember the position. */
static void
flush_printed(int *printed)
{
	if (*printed)
	{
		fflush(stdout);
		save_state();
		*printed = 0;
	}
}

/*
 * Handles the pending notifications (payload {"id": N, ...}).  The
 * publisher's complete payloads after last_id are printed, and a truncated
 * one is read at once.  Anything else only says that a catch-up is due
 * (*wake; spaced by --min-interval, so a flood of NOTIFYs costs no more than
 * polling), and one from another process that the publisher may have been
 * restarted (*recheck).  Returns -1 when a query failed.
 */
static int
drain_notifies(PGconn *conn, int *wake, int *recheck)
{
	PGnotify   *nt;
	int			printed = 0;
	int			rc = 0;

	while (rc == 0 && (nt = PQnotifies(conn)) != NULL)
	{
		const char *p = strstr(nt->extra, "\"id\":");
		long long	id = p ? atoll(p + 5) : 0;
		int			ours = publisher_pid > 0 && nt->be_pid == publisher_pid && p == nt->extra + 1;

		/*
		 * (in worker mode, only the publisher's ids; in commit mode anyone's,
		 * so the hint expires: a forged id would keep us polling)
		 */
		if (id > notified_max && (publisher_pid == 0 || ours))
		{
			notified_max = id;
			notified_at = now_seconds();
		}
		if (ours && id > last_id)
		{
			/*
			 * (topic and key come first, JSON-escaped: the text ', "data": '
			 * cannot occur in them)
			 */
			if (strstr(nt->extra, ", \"data\": ") != NULL)
			{
				printf("%s\n", nt->extra);
				last_id = id;
				printed = 1;
			}
			else
			{
				/*
				 * no data (the default: payloads name the event only) or too
				 * big for NOTIFY: read it, and what follows, from the table
				 */
				flush_printed(&printed);
				rc = catch_up(conn);
			}
		}
		else if (publisher_pid == 0)
			*wake = 1;
		else if (!ours && id > last_id)
		{
			*wake = 1;
			*recheck = 1;
		}
		PQfreemem(nt);
	}
	flush_printed(&printed);
	return rc;
}

/* One connection's life: LISTEN, catch up, then wait for wake-ups. Returns when it breaks. */
static void
serve(PGconn *conn)
{
	PGresult   *res = PQexec(conn, "LISTEN elfsofa_events");

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		log_msg("LISTEN failed", PQerrorMessage(conn));
		PQclear(res);
		return;
	}
	PQclear(res);
	if (last_id < 0 && start_at_newest(conn) < 0)
		return;
	if (find_publisher(conn) < 0 || prepare_catch_up(conn) < 0 || catch_up(conn) < 0)
		return;

	while (!stop_requested)
	{
		int			sock = PQsocket(conn);
		fd_set		fds;
		struct timeval tv;
		int			rc;
		int			wake = 0;
		int			recheck = 0;

		/*
		 * An event was announced but not yet handed out: an earlier id is in
		 * flight.  Look again soon, for up to NOTIFIED_HINT_SECONDS.
		 */
		if (notified_max > last_id && now_seconds() - notified_at > NOTIFIED_HINT_SECONDS)
			notified_max = last_id;
		tv.tv_sec = 0;
		tv.tv_usec = notified_max > last_id ? 5000 : 500000;
		FD_ZERO(&fds);
		FD_SET(sock, &fds);
		rc = select(sock + 1, &fds, NULL, NULL, &tv);
		if (rc < 0 && errno != EINTR)
		{
			log_msg("select failed", strerror(errno));
			return;
		}
		if (stop_requested)
			return;
		if (rc > 0)
		{
			if (!PQconsumeInput(conn))
			{
				log_msg("connection lost", PQerrorMessage(conn));
				return;
			}
			if (drain_notifies(conn, &wake, &recheck) < 0)
				return;
			/* the publisher's payloads were printed as they came: no query */
			if (!wake && publisher_pid > 0)
				continue;
			if (recheck && find_publisher(conn) < 0)
				return;
		}
		/*
		 * Also on timeouts: a safety net that costs one small query per half
		 * second.  Under load, queries are spaced by --min-interval so that
		 * one fetches many events.
		 */
		{
			double		since = now_seconds() - last_query;

			if (since < min_interval)
				usleep((useconds_t) ((min_interval - since) * 1e6));
		}
		last_query = now_seconds();
		if (catch_up(conn) < 0)
			return;
	}
}

int
main(int argc, char **argv)
{
	const char *conninfo = "";
	int			backoff = 1;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--from-id") == 0 && i + 1 < argc)
			last_id = atoll(argv[++i]);
		else if (strcmp(argv[i], "--state-file") == 0 && i + 1 < argc)
			state_file = argv[++i];
		else if (strcmp(argv[i], "--timing") == 0)
			timing = 1;
		else if (strcmp(argv[i], "--min-interval") == 0 && i + 1 < argc)
			min_interval = atof(argv[++i]) / 1000.0;
		else if (strcmp(argv[i], "--help") == 0 || argv[i][0] == '-')
		{
			fprintf(stderr, "usage: %s [--from-id N] [--state-file FILE] [--timing] [--min-interval MS] [CONNINFO]\n", argv[0]);
			return strcmp(argv[i], "--help") == 0 ? 0 : 2;
		}
		else
			conninfo = argv[i];
	}
	if (last_id < 0)
	{
		load_state();
		if (last_id >= 0)
			resume_after_output();
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);

	while (!stop_requested)
	{
		/* named in pg_stat_activity unless CONNINFO or PGAPPNAME says otherwise */
		const char *const keys[] = {"dbname", "fallback_application_name", NULL};
		const char *const vals[] = {conninfo, "elfsofa-listen", NULL};
		PGconn	   *conn = PQconnectdbParams(keys, vals, 1);

		if (PQstatus(conn) == CONNECTION_OK)
		{
			backoff = 1;
			serve(conn);
		}
		else
			log_msg("could not connect", PQerrorMessage(conn));
		PQfinish(conn);
		if (stop_requested)
			break;
		sleep(backoff);
		if (backoff < 8)
			backoff *= 2;
	}
	save_state();
	return 0;
}
