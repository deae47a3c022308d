/*
 * calendar_waits.c — preloaded ahead of libfaketime by test/calendar.sh.
 *
 * libfaketime wraps the waiting calls (epoll_wait, poll, select, sleeps) to
 * scale their timeouts, and while a process waits inside one of them its
 * clock calls return the real time.  PostgreSQL reads the clock in its
 * SIGALRM handler, which interrupts exactly those waits: it saw a time weeks
 * before the timeout's due time, re-armed the timer, and lock_timeout and
 * statement_timeout never fired during a lock wait or a sleep.  The clock
 * here is moved by a fixed offset at the normal rate, so the waits need no
 * scaling: these versions go straight to the kernel and libfaketime keeps
 * faking only the clock.
 *
 * libfaketime also shares a semaphore and a page of shared memory among the
 * processes it starts, named after the process that made them, for modes
 * that need a common start (not ours: a fixed offset).  A process that made
 * them unlinks them at exit while its children still name them; a process
 * killed with SIGKILL leaves them behind, and a later process given the same
 * pid cannot make its own: it exits with "sem_open failed and recreation
 * attempts failed" (a calendar run lost this way, long after the kills of the
 * chaos and crash suites).  sem_open below refuses libfaketime's names, and
 * libfaketime then goes on without the shared state, each process on its own
 * clock with the same offset.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define KERNEL_SIGSET_SIZE (_NSIG / 8)

int
epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
	return syscall(SYS_epoll_pwait, epfd, events, maxevents, timeout, NULL, KERNEL_SIGSET_SIZE);
}

int
epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout, const sigset_t *sigmask)
{
	return syscall(SYS_epoll_pwait, epfd, events, maxevents, timeout, sigmask, KERNEL_SIGSET_SIZE);
}

int
ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo, const sigset_t *sigmask)
{
	return syscall(SYS_ppoll, fds, nfds, tmo, sigmask, KERNEL_SIGSET_SIZE);
}

int
poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	struct timespec ts;

	if (timeout < 0)
		return ppoll(fds, nfds, NULL, NULL);
	ts.tv_sec = timeout / 1000;
	ts.tv_nsec = (long) (timeout % 1000) * 1000000L;
	return ppoll(fds, nfds, &ts, NULL);
}

int
pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *tmo, const sigset_t *sigmask)
{
	/* the kernel's pselect6 takes the mask as {pointer, size} */
	struct
	{
		const sigset_t *ss;
		size_t		len;
	}			mask = {sigmask, KERNEL_SIGSET_SIZE};
	struct timespec copy;

	if (tmo)
		copy = *tmo;			/* the kernel writes the time left back */
	return syscall(SYS_pselect6, nfds, r, w, e, tmo ? &copy : NULL, sigmask ? &mask : NULL);
}

int
select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	struct timespec ts;
	int			rc;

	if (tv == NULL)
		return syscall(SYS_pselect6, nfds, r, w, e, NULL, NULL);
	ts.tv_sec = tv->tv_sec;
	ts.tv_nsec = tv->tv_usec * 1000L;
	rc = syscall(SYS_pselect6, nfds, r, w, e, &ts, NULL);
	/* like Linux's select, leave the time not slept in *tv */
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	return rc;
}

int
nanosleep(const struct timespec *req, struct timespec *rem)
{
	return syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, req, rem) == 0 ? 0 : -1;
}

int
clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem)
{
	struct timespec rel;

	if ((flags & TIMER_ABSTIME) && clock == CLOCK_REALTIME)
	{
		/* a deadline on the faked clock: sleep for what is left of it */
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		rel.tv_sec = req->tv_sec - now.tv_sec;
		rel.tv_nsec = req->tv_nsec - now.tv_nsec;
		if (rel.tv_nsec < 0)
		{
			rel.tv_nsec += 1000000000L;
			rel.tv_sec--;
		}
		if (rel.tv_sec < 0)
			return 0;
		req = &rel;
		flags = 0;
		clock = CLOCK_MONOTONIC;
	}
	/* returns the error number itself, as the libc function does */
	if (syscall(SYS_clock_nanosleep, clock, flags, req, rem) == 0)
		return 0;
	return errno;
}

int
usleep(useconds_t usec)
{
	struct timespec ts = {usec / 1000000, (long) (usec % 1000000) * 1000L};

	return nanosleep(&ts, NULL);
}

unsigned int
sleep(unsigned int seconds)
{
	struct timespec ts = {seconds, 0};
	struct timespec rem = {0, 0};

	if (nanosleep(&ts, &rem) == 0)
		return 0;
	return (unsigned int) rem.tv_sec;
}

sem_t *
sem_open(const char *name, int oflag, ...)
{
	static sem_t *(*real_sem_open) (const char *, int, ...);
	mode_t		mode = 0;
	unsigned int value = 0;

	if (strncmp(name, "/faketime_", strlen("/faketime_")) == 0)
	{
		errno = EACCES;
		return SEM_FAILED;
	}
	if (real_sem_open == NULL)
		real_sem_open = (sem_t *(*) (const char *, int, ...)) dlsym(RTLD_NEXT, "sem_open");
	if (real_sem_open == NULL)
	{
		errno = ENOSYS;
		return SEM_FAILED;
	}
	if (oflag & O_CREAT)
	{
		va_list		ap;

		va_start(ap, oflag);
		mode = va_arg(ap, mode_t);
		value = va_arg(ap, unsigned int);
		va_end(ap);
		return real_sem_open(name, oflag, mode, value);
	}
	return real_sem_open(name, oflag);
}
