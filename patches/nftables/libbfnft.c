/*
 * libbfnft.so: LD_PRELOAD interposer that points an unmodified nft at bpfilterd.
 *
 * socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER) returns one end of an AF_UNIX socketpair; the
 * interposer keeps, per such fd, a stream connection to the daemon and an in-memory queue of
 * reply datagrams. Every send is one request frame answered by exactly one reply frame, read
 * before the send returns, so replies are readable the moment nft polls with a zero timeout.
 * Replies never pass through a socket buffer (dumps can be megabytes); the socketpair only
 * carries one token byte that keeps the fd readable for select/poll while datagrams are queued.
 * Every other socket (NETLINK_ROUTE included) and every other fd is left to libc untouched.
 *
 * Framing (Nft.Netlink/DaemonFrame.cs), little-endian:
 *   request: u32 len, u32 portid, len bytes (what nft passed to one send call)
 *   reply:   u32 len, u32 count, count x (u32 dlen, dlen bytes)
 *
 * Multicast groups (nft monitor): the first membership opens a second daemon connection for events,
 * sends the group mask on it (a GROUPS control message, answered with an errno) and starts a thread
 * that queues each event frame's datagrams like replies; an event frame without datagrams means the
 * daemon dropped events for this socket, reported as ENOBUFS by the next receive, as netlink does.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NETLINK_ADD_MEMBERSHIP
#define NETLINK_ADD_MEMBERSHIP 1
#endif
#ifndef NETLINK_DROP_MEMBERSHIP
#define NETLINK_DROP_MEMBERSHIP 2
#endif
#define BFNFT_GROUPS_TYPE 0x0F /* DaemonFrame.GroupsType */
#define BFNFT_GROUPS_SEQ 0x544E4642u /* DaemonFrame.GroupsSeq: tells the request from a client's own type-0x0F message */
#define BFNFT_GROUPS_PID 0xFFFFFFFFu /* DaemonFrame.GroupsPid */
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif
#ifndef NLM_F_CAPPED
#define NLM_F_CAPPED 0x100
#endif
#ifndef NLM_F_ACK_TLVS
#define NLM_F_ACK_TLVS 0x200
#endif

#define BFNFT_DEFAULT_SOCKET "/run/bpfilter/bpfilterd.sock"
#define BFNFT_MAX_REPLY (256u << 20) /* refuse absurd reply frames instead of allocating them */
#define BFNFT_MAX_REQUEST (64u << 20) /* DaemonFrame.MaxRequest */
#define BFNFT_NOPT 16                 /* SOL_NETLINK option numbers remembered per socket */

struct dgram {
	struct dgram *next;
	size_t len, off; /* off: bytes already handed out (split at message boundaries) */
	unsigned char data[];
};

struct nlsock {
	int fd;       /* handed to nft: socketpair end */
	int peer;     /* other socketpair end: holds the readiness token */
	int daemon;   /* stream connection to bpfilterd */
	uint32_t portid;
	uint32_t groups;
	int bound;
	int token; /* a token byte is sitting in fd's receive buffer */
	int closed; /* closed by the application: the struct stays as a tombstone (see destroy) */
	int events; /* event connection to bpfilterd (nonzero groups), -1 when none; its thread closes it */
	int events_err; /* events were lost: the next receive fails with this errno (ENOBUFS) */
	size_t qbytes; /* bytes queued (not yet handed out): events past SO_RCVBUF are dropped */
	int opt[BFNFT_NOPT];
	struct dgram *head, *tail;
	pthread_mutex_t io; /* serializes request/reply round trips on this socket */
	struct nlsock *next;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nlsock *table;
static int nsocks; /* fast path: no netfilter socket open, nothing to look up */
static uint32_t next_rover = (uint32_t)-4096; /* kernel's netlink_autobind fallback range */

/* ---------- raw syscalls for the interposer's own I/O (never re-enter our wrappers) ---------- */

static ssize_t sys_read(int fd, void *b, size_t n) { return syscall(SYS_read, fd, b, n); }
static int sys_close(int fd) { return (int)syscall(SYS_close, fd); }

static int write_all(int fd, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	while (n > 0) {
		ssize_t r = syscall(SYS_sendto, fd, p, n, MSG_NOSIGNAL, NULL, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t r = sys_read(fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = ECONNRESET;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* ---------- the real libc entry points for everything that is not ours ---------- */

#define REAL(name) real_##name
#define DECLARE_REAL(ret, name, ...)                                         \
	static ret (*real_##name)(__VA_ARGS__);                              \
	static void resolve_##name(void)                                     \
	{                                                                    \
		if (!real_##name)                                            \
			real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name); \
	}

DECLARE_REAL(int, socket, int, int, int)
DECLARE_REAL(int, bind, int, const struct sockaddr *, socklen_t)
DECLARE_REAL(int, connect, int, const struct sockaddr *, socklen_t)
DECLARE_REAL(int, getsockname, int, struct sockaddr *, socklen_t *)
DECLARE_REAL(int, getpeername, int, struct sockaddr *, socklen_t *)
DECLARE_REAL(int, setsockopt, int, int, int, const void *, socklen_t)
DECLARE_REAL(int, getsockopt, int, int, int, void *, socklen_t *)
DECLARE_REAL(ssize_t, sendto, int, const void *, size_t, int, const struct sockaddr *, socklen_t)
DECLARE_REAL(ssize_t, sendmsg, int, const struct msghdr *, int)
DECLARE_REAL(ssize_t, send, int, const void *, size_t, int)
DECLARE_REAL(ssize_t, write, int, const void *, size_t)
DECLARE_REAL(ssize_t, recvmsg, int, struct msghdr *, int)
DECLARE_REAL(ssize_t, recvfrom, int, void *, size_t, int, struct sockaddr *, socklen_t *)
DECLARE_REAL(ssize_t, recv, int, void *, size_t, int)
DECLARE_REAL(ssize_t, read, int, void *, size_t)
DECLARE_REAL(ssize_t, writev, int, const struct iovec *, int)
DECLARE_REAL(ssize_t, readv, int, const struct iovec *, int)
DECLARE_REAL(int, sendmmsg, int, struct mmsghdr *, unsigned int, int)
DECLARE_REAL(int, recvmmsg, int, struct mmsghdr *, unsigned int, int, struct timespec *)
DECLARE_REAL(int, close, int)

/* ---------- per-fd table ---------- */

/* Returns the state of fd, or NULL when fd is not one of ours. */
static struct nlsock *lookup(int fd)
{
	struct nlsock *s;
	if (__atomic_load_n(&nsocks, __ATOMIC_ACQUIRE) == 0 || fd < 0)
		return NULL;
	pthread_mutex_lock(&table_lock);
	for (s = table; s && s->fd != fd; s = s->next)
		;
	pthread_mutex_unlock(&table_lock);
	return s;
}

static int portid_taken(uint32_t portid)
{
	for (struct nlsock *s = table; s; s = s->next)
		if (s->bound && s->portid == portid)
			return 1;
	return 0;
}

/* As netlink_autobind: the process id first, then negative ids counting down. Caller holds table_lock. */
static void autobind_locked(struct nlsock *s)
{
	if (s->bound)
		return;
	uint32_t id = (uint32_t)getpid();
	while (portid_taken(id))
		id = next_rover--;
	s->portid = id;
	s->bound = 1;
}

static void free_queue(struct nlsock *s)
{
	struct dgram *d = s->head;
	while (d) {
		struct dgram *n = d->next;
		free(d);
		d = n;
	}
	s->head = s->tail = NULL;
	s->qbytes = 0;
}

/* Keeps fd readable exactly while datagrams are queued. Caller holds table_lock. */
static void sync_token_locked(struct nlsock *s)
{
	char c = 0;
	int readable = s->head || s->events_err;
	if (readable && !s->token) {
		if (syscall(SYS_sendto, s->peer, &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0) == 1)
			s->token = 1;
	} else if (!readable && s->token) {
		if (syscall(SYS_recvfrom, s->fd, &c, 1, MSG_DONTWAIT, NULL, NULL) == 1)
			s->token = 0;
	}
}

static const char *socket_path(void)
{
	const char *p = getenv("BFNFT_SOCKET");
	return p && *p ? p : BFNFT_DEFAULT_SOCKET;
}

/* A stream connection to the daemon's socket; with report, a failed connect is named on stderr
 * (nft itself only says "Unable to initialize Netlink socket"). */
static int connect_daemon(int report)
{
	const char *path = socket_path();
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	int d = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (d < 0)
		return -1;
	if (syscall(SYS_connect, d, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;
		sys_close(d);
		if (report)
			fprintf(stderr, "bfnft: cannot reach bpfilterd at %s: %s\n", path, strerror(e));
		errno = e;
		return -1;
	}
	return d;
}

static int open_netfilter_socket(int type)
{
	int flags = type & (SOCK_NONBLOCK | SOCK_CLOEXEC);
	int d = connect_daemon(1);
	if (d < 0)
		return -1;
	int sv[2];
	if (syscall(SYS_socketpair, AF_UNIX, SOCK_DGRAM | flags, 0, sv) < 0) {
		int e = errno;
		sys_close(d);
		errno = e;
		return -1;
	}
	/* The token end is internal: never inherited, never blocking. */
	fcntl(sv[1], F_SETFD, FD_CLOEXEC);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);

	struct nlsock *s = calloc(1, sizeof(*s));
	if (!s) {
		sys_close(d);
		sys_close(sv[0]);
		sys_close(sv[1]);
		errno = ENOMEM;
		return -1;
	}
	s->fd = sv[0];
	s->peer = sv[1];
	s->daemon = d;
	s->events = -1;
	pthread_mutex_init(&s->io, NULL);
	pthread_mutex_lock(&table_lock);
	s->next = table;
	table = s;
	__atomic_add_fetch(&nsocks, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&table_lock);
	return s->fd;
}

static void destroy(int fd)
{
	struct nlsock **pp, *s = NULL;
	pthread_mutex_lock(&table_lock);
	for (pp = &table; *pp; pp = &(*pp)->next)
		if ((*pp)->fd == fd) {
			s = *pp;
			*pp = s->next;
			__atomic_sub_fetch(&nsocks, 1, __ATOMIC_RELEASE);
			break;
		}
	pthread_mutex_unlock(&table_lock);
	if (!s)
		return;
	/*
	 * Another thread may still be inside a send or a blocking read on this socket, holding a
	 * pointer to it: wait for sends (io lock), make reads give up (closed), and never free the
	 * small struct itself, so no pointer ever dangles. Its queue and descriptors are released.
	 */
	pthread_mutex_lock(&s->io);
	pthread_mutex_lock(&table_lock);
	s->closed = 1;
	free_queue(s);
	if (s->events >= 0)
		syscall(SYS_shutdown, s->events, SHUT_RDWR); /* its thread sees EOF and closes it */
	pthread_mutex_unlock(&table_lock);
	syscall(SYS_shutdown, s->fd, SHUT_RDWR); /* wakes a reader blocked in poll on fd */
	sys_close(s->daemon);
	sys_close(s->peer);
	pthread_mutex_unlock(&s->io);
}

/* ---------- netlink ACK options the daemon does not know about ---------- */

static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t rd16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static void wr32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr16(unsigned char *p, uint16_t v) { memcpy(p, &v, 2); }

/*
 * The daemon answers as a kernel socket with NETLINK_EXT_ACK set and NETLINK_CAP_ACK clear (what
 * nft uses). For other settings, rewrite NLMSG_ERROR messages the way netlink_ack would have
 * built them: without extack TLVs, and/or with the echoed request capped to its header.
 */
static size_t adjust_errors(const struct nlsock *s, unsigned char *buf, size_t len)
{
	int ext = s->opt[NETLINK_EXT_ACK], cap = s->opt[NETLINK_CAP_ACK];
	if (ext && !cap)
		return len;
	size_t pos = 0;
	while (len - pos >= NLMSG_HDRLEN) {
		unsigned char *m = buf + pos;
		uint32_t mlen = rd32(m);
		if (mlen < NLMSG_HDRLEN || mlen > len - pos)
			break;
		uint16_t type = rd16(m + 4), flags = rd16(m + 6);
		size_t errhdr = NLMSG_HDRLEN + 4 + NLMSG_HDRLEN; /* nlmsghdr, error, echoed header */
		if (type == NLMSG_ERROR && mlen >= errhdr) {
			int32_t error = (int32_t)rd32(m + NLMSG_HDRLEN);
			uint32_t echoed = (flags & NLM_F_CAPPED) ? NLMSG_HDRLEN : rd32(m + NLMSG_HDRLEN + 4);
			size_t tlv = NLMSG_HDRLEN + 4 + NLMSG_ALIGN(echoed);
			if (echoed >= NLMSG_HDRLEN && tlv <= mlen) {
				size_t tlvlen = mlen - tlv, keep_body = tlv;
				if (!ext) {
					tlvlen = 0;
					flags &= ~NLM_F_ACK_TLVS;
				}
				if (cap && error != 0 && !(flags & NLM_F_CAPPED)) {
					memmove(m + errhdr, m + tlv, tlvlen);
					keep_body = errhdr;
					flags |= NLM_F_CAPPED;
				}
				uint32_t nlen = (uint32_t)(keep_body + tlvlen);
				if (nlen != mlen) {
					size_t old_end = pos + NLMSG_ALIGN(mlen), new_end = pos + NLMSG_ALIGN(nlen);
					if (old_end > len)
						old_end = len;
					memmove(buf + new_end, buf + old_end, len - old_end);
					len -= old_end - new_end;
					wr32(m, nlen);
					mlen = nlen;
				}
				wr16(m + 6, flags);
			}
		}
		pos += NLMSG_ALIGN(mlen);
	}
	return len;
}

/* ---------- send: one request frame, one reply frame, datagrams queued ---------- */

static ssize_t nl_send(struct nlsock *s, const struct iovec *iov, size_t iovcnt, const struct sockaddr *to, socklen_t tolen)
{
	if (to && tolen >= sizeof(struct sockaddr_nl)) {
		const struct sockaddr_nl *nl = (const struct sockaddr_nl *)to;
		if (nl->nl_family != AF_NETLINK) {
			errno = EINVAL;
			return -1;
		}
		if (nl->nl_pid != 0) { /* only the "kernel" lives behind this socket */
			errno = ECONNREFUSED;
			return -1;
		}
	}
	size_t total = 0;
	for (size_t i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total > BFNFT_MAX_REQUEST) {
		errno = EMSGSIZE;
		return -1;
	}
	unsigned char *req = malloc(8 + total);
	if (!req) {
		errno = ENOMEM;
		return -1;
	}
	pthread_mutex_lock(&table_lock);
	autobind_locked(s);
	uint32_t portid = s->portid;
	pthread_mutex_unlock(&table_lock);
	wr32(req, (uint32_t)total);
	wr32(req + 4, portid);
	size_t off = 8;
	for (size_t i = 0; i < iovcnt; i++) {
		memcpy(req + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}

	struct dgram *first = NULL, *last = NULL;
	size_t added = 0;
	ssize_t ret = -1;
	unsigned char hdr[8];
	pthread_mutex_lock(&s->io);
	if (s->closed) {
		errno = EBADF;
		goto out;
	}
	if (write_all(s->daemon, req, 8 + total) < 0 || read_all(s->daemon, hdr, 8) < 0)
		goto out;
	uint32_t blen = rd32(hdr), count = rd32(hdr + 4);
	if (blen > BFNFT_MAX_REPLY || count > blen / 4) {
		errno = EPROTO;
		goto out;
	}
	for (uint32_t i = 0; i < count; i++) {
		unsigned char lb[4];
		if (blen < 4 || read_all(s->daemon, lb, 4) < 0)
			goto bad;
		blen -= 4;
		uint32_t dl = rd32(lb);
		if (dl > blen) {
			errno = EPROTO;
			goto bad;
		}
		struct dgram *d = malloc(sizeof(*d) + dl);
		if (!d) {
			errno = ENOMEM;
			goto bad;
		}
		if (read_all(s->daemon, d->data, dl) < 0) {
			free(d);
			goto bad;
		}
		blen -= dl;
		d->next = NULL;
		d->off = 0;
		d->len = adjust_errors(s, d->data, dl);
		added += d->len;
		if (last)
			last->next = d;
		else
			first = d;
		last = d;
	}
	if (blen != 0) {
		errno = EPROTO;
		goto bad;
	}
	pthread_mutex_lock(&table_lock);
	if (first) {
		if (s->tail)
			s->tail->next = first;
		else
			s->head = first;
		s->tail = last;
		s->qbytes += added;
	}
	sync_token_locked(s);
	pthread_mutex_unlock(&table_lock);
	first = NULL;
	ret = (ssize_t)total;
	goto out;
bad:
	/* The stream is out of step now; later sends on this socket fail instead of misreading. */
	shutdown(s->daemon, SHUT_RDWR);
out:
	pthread_mutex_unlock(&s->io);
	while (first) {
		struct dgram *n = first->next;
		free(first);
		first = n;
	}
	free(req);
	return ret;
}

/* ---------- receive: one datagram per call, as a netlink socket hands out skbs ---------- */

static int is_nonblocking(int fd, int flags)
{
	if (flags & MSG_DONTWAIT)
		return 1;
	int fl = fcntl(fd, F_GETFL);
	return fl >= 0 && (fl & O_NONBLOCK);
}

/* Largest prefix of whole netlink messages in d (from d->off) that fits in room; 0 if none. */
static size_t fitting_prefix(const struct dgram *d, size_t room)
{
	const unsigned char *p = d->data + d->off;
	size_t n = d->len - d->off, pos = 0, fit = 0;
	while (n - pos >= NLMSG_HDRLEN) {
		uint32_t ml = rd32(p + pos);
		if (ml < NLMSG_HDRLEN || ml > n - pos)
			break;
		size_t end = pos + NLMSG_ALIGN(ml);
		if (end > n)
			end = n;
		if (end > room)
			break;
		fit = pos = end;
	}
	return fit;
}

static ssize_t nl_recv(struct nlsock *s, struct iovec *iov, size_t iovcnt, int flags,
		       struct sockaddr *from, socklen_t *fromlen, int *msg_flags)
{
	size_t room = 0;
	for (size_t i = 0; i < iovcnt; i++)
		room += iov[i].iov_len;
	if (msg_flags)
		*msg_flags = 0;
	for (;;) {
		pthread_mutex_lock(&table_lock);
		if (s->closed) {
			pthread_mutex_unlock(&table_lock);
			errno = EBADF;
			return -1;
		}
		if (s->events_err) {
			/* As sock_error in netlink_recvmsg: a lost-events error comes before queued data. */
			int e = s->events_err;
			s->events_err = 0;
			sync_token_locked(s);
			pthread_mutex_unlock(&table_lock);
			errno = e;
			return -1;
		}
		struct dgram *d = s->head;
		if (d) {
			size_t avail = d->len - d->off, give = avail, whole = avail;
			int trunc = 0, consumed;
			if (avail > room) {
				size_t fit = fitting_prefix(d, room);
				if (fit > 0) {
					give = whole = fit; /* rest stays queued for the next read */
				} else {
					give = room; /* a single message too large: truncated, as netlink does */
					trunc = 1;
				}
			}
			const unsigned char *src = d->data + d->off;
			size_t left = give;
			for (size_t i = 0; i < iovcnt && left > 0; i++) {
				size_t c = iov[i].iov_len < left ? iov[i].iov_len : left;
				memcpy(iov[i].iov_base, src, c);
				src += c;
				left -= c;
			}
			consumed = !(flags & MSG_PEEK);
			if (consumed) {
				if (trunc || whole == avail) {
					s->head = d->next;
					if (!s->head)
						s->tail = NULL;
					s->qbytes -= avail;
					free(d);
				} else {
					d->off += whole;
					s->qbytes -= whole;
				}
				sync_token_locked(s);
			}
			pthread_mutex_unlock(&table_lock);
			if (from && fromlen) {
				struct sockaddr_nl nl = { .nl_family = AF_NETLINK, .nl_pid = 0, .nl_groups = 0 };
				size_t c = *fromlen < sizeof(nl) ? *fromlen : sizeof(nl);
				memcpy(from, &nl, c);
				*fromlen = sizeof(nl);
			}
			if (trunc && msg_flags)
				*msg_flags |= MSG_TRUNC;
			return (ssize_t)((trunc && (flags & MSG_TRUNC)) ? avail : give);
		}
		pthread_mutex_unlock(&table_lock);
		if (is_nonblocking(s->fd, flags)) {
			errno = EAGAIN;
			return -1;
		}
		/* Blocking read on an empty queue: wait for a send from another thread, as the kernel would. */
		struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -1;
	}
}

/* ---------- multicast groups: an event connection and its reader thread ---------- */


static int send_groups(int fd, uint32_t portid, uint32_t groups)
{
	unsigned char f[8 + NLMSG_HDRLEN + 4];
	memset(f, 0, sizeof(f));
	wr32(f, NLMSG_HDRLEN + 4);
	wr32(f + 4, portid);
	wr32(f + 8, NLMSG_HDRLEN + 4);
	wr16(f + 12, BFNFT_GROUPS_TYPE);
	wr32(f + 16, BFNFT_GROUPS_SEQ);
	wr32(f + 20, BFNFT_GROUPS_PID);
	wr32(f + 8 + NLMSG_HDRLEN, groups);
	return write_all(fd, f, sizeof(f));
}

/* Reads the event stream until it ends: datagrams are queued as replies are, an empty frame is ENOBUFS. */
static void *event_reader(void *arg)
{
	struct nlsock *s = arg;
	int fd;
	pthread_mutex_lock(&table_lock);
	fd = s->events;
	pthread_mutex_unlock(&table_lock);
	for (;;) {
		unsigned char hdr[8];
		if (read_all(fd, hdr, 8) < 0)
			break;
		uint32_t blen = rd32(hdr), count = rd32(hdr + 4);
		if (blen > BFNFT_MAX_REPLY || count > blen / 4)
			break;
		unsigned char *body = malloc(blen ? blen : 1);
		if (!body || read_all(fd, body, blen) < 0) {
			free(body);
			break;
		}
		struct dgram *first = NULL, *last = NULL;
		size_t pos = 0, added = 0;
		int ok = 1;
		for (uint32_t i = 0; i < count && ok; i++) {
			uint32_t dl = pos + 4 <= blen ? rd32(body + pos) : 0;
			if (pos + 4 > blen || dl > blen - pos - 4) {
				ok = 0;
				break;
			}
			pos += 4;
			/* A 4-byte datagram answers a later GROUPS change: nothing to deliver. */
			if (dl >= NLMSG_HDRLEN) {
				struct dgram *d = malloc(sizeof(*d) + dl);
				if (!d) {
					ok = 0;
					break;
				}
				memcpy(d->data, body + pos, dl);
				d->next = NULL;
				d->off = 0;
				d->len = dl;
				added += dl;
				if (last)
					last->next = d;
				else
					first = d;
				last = d;
			}
			pos += dl;
		}
		free(body);
		/* As netlink_broadcast_deliver: past the receive buffer (nft monitor sets 16 MiB) an event is
		 * dropped and the reader learns it with ENOBUFS; events never pile up in memory unbounded. */
		int rcvbuf = 0;
		socklen_t rl = sizeof(rcvbuf);
		if (syscall(SYS_getsockopt, s->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &rl) < 0 || rcvbuf <= 0)
			rcvbuf = 1 << 20;
		pthread_mutex_lock(&table_lock);
		if (!s->closed) {
			if (count == 0 || (first && s->qbytes > (size_t)rcvbuf)) {
				s->events_err = ENOBUFS;
			} else if (first) {
				if (s->tail)
					s->tail->next = first;
				else
					s->head = first;
				s->tail = last;
				s->qbytes += added;
				first = NULL;
			}
			sync_token_locked(s);
		}
		pthread_mutex_unlock(&table_lock);
		while (first) {
			struct dgram *n = first->next;
			free(first);
			first = n;
		}
		if (!ok)
			break;
	}
	pthread_mutex_lock(&table_lock);
	s->events = -1;
	sys_close(fd);
	pthread_mutex_unlock(&table_lock);
	return NULL;
}

/* Sets the socket's memberships (nl_groups bits). The first opens the event connection and waits for the
 * daemon's answer, so events committed after setsockopt returns are delivered, as with the kernel. */
static int set_groups(struct nlsock *s, uint32_t groups)
{
	int rc = 0;
	pthread_mutex_lock(&s->io);
	pthread_mutex_lock(&table_lock);
	autobind_locked(s);
	uint32_t portid = s->portid;
	int ev = s->events, closed = s->closed;
	pthread_mutex_unlock(&table_lock);
	if (closed) {
		errno = EBADF;
		rc = -1;
	} else if (ev >= 0) {
		/* The reader thread consumes the answer. */
		if (send_groups(ev, portid, groups) < 0)
			rc = -1;
	} else if (groups != 0) {
		int d = connect_daemon(0);
		unsigned char a[16];
		if (d < 0 || send_groups(d, portid, groups) < 0 || read_all(d, a, sizeof(a)) < 0) {
			int e = d < 0 ? errno : ECONNRESET;
			if (d >= 0)
				sys_close(d);
			errno = e;
			rc = -1;
		} else if (rd32(a) != 8 || rd32(a + 4) != 1 || rd32(a + 8) != 4 || rd32(a + 12) != 0) {
			int e = rd32(a + 4) == 1 && rd32(a + 8) == 4 ? (int)rd32(a + 12) : EPROTO;
			sys_close(d);
			errno = e;
			rc = -1;
		} else {
			pthread_t t;
			pthread_attr_t attr;
			sigset_t all, old;
			pthread_mutex_lock(&table_lock);
			s->events = d;
			pthread_mutex_unlock(&table_lock);
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
			sigfillset(&all);
			pthread_sigmask(SIG_SETMASK, &all, &old); /* signals stay with nft's own threads */
			int err = pthread_create(&t, &attr, event_reader, s);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			pthread_attr_destroy(&attr);
			if (err) {
				pthread_mutex_lock(&table_lock);
				s->events = -1;
				pthread_mutex_unlock(&table_lock);
				sys_close(d);
				errno = err;
				rc = -1;
			}
		}
	}
	if (rc == 0) {
		pthread_mutex_lock(&table_lock);
		s->groups = groups;
		pthread_mutex_unlock(&table_lock);
	}
	pthread_mutex_unlock(&s->io);
	return rc;
}

/* ---------- interposed entry points ---------- */

int socket(int domain, int type, int protocol)
{
	if (domain == AF_NETLINK && (type & 0xf) == SOCK_RAW && protocol == NETLINK_NETFILTER)
		return open_netfilter_socket(type);
	resolve_socket();
	return REAL(socket)(domain, type, protocol);
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_bind();
		return REAL(bind)(fd, addr, len);
	}
	const struct sockaddr_nl *nl = (const struct sockaddr_nl *)addr;
	if (!addr || len < sizeof(*nl) || nl->nl_family != AF_NETLINK) {
		errno = EINVAL;
		return -1;
	}
	int rc = 0;
	pthread_mutex_lock(&table_lock);
	if (nl->nl_pid) {
		if (s->bound && s->portid != nl->nl_pid) {
			errno = EINVAL;
			rc = -1;
		} else if (!s->bound && portid_taken(nl->nl_pid)) {
			errno = EADDRINUSE;
			rc = -1;
		} else {
			s->portid = nl->nl_pid;
			s->bound = 1;
		}
	} else {
		autobind_locked(s);
	}
	uint32_t groups = s->groups;
	pthread_mutex_unlock(&table_lock);
	/* netlink_bind replaces the first 32 groups with nl_groups. */
	if (rc == 0 && (nl->nl_groups || groups))
		rc = set_groups(s, nl->nl_groups);
	return rc;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_connect();
		return REAL(connect)(fd, addr, len);
	}
	const struct sockaddr_nl *nl = (const struct sockaddr_nl *)addr;
	if (!addr || len < sizeof(*nl) || nl->nl_family != AF_NETLINK) {
		errno = EINVAL;
		return -1;
	}
	if (nl->nl_pid != 0 || nl->nl_groups != 0) {
		errno = ECONNREFUSED;
		return -1;
	}
	pthread_mutex_lock(&table_lock);
	autobind_locked(s);
	pthread_mutex_unlock(&table_lock);
	return 0;
}

static int put_nladdr(struct sockaddr *addr, socklen_t *len, uint32_t pid, uint32_t groups)
{
	if (!addr || !len) {
		errno = EFAULT;
		return -1;
	}
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK, .nl_pid = pid, .nl_groups = groups };
	size_t c = *len < sizeof(nl) ? *len : sizeof(nl);
	memcpy(addr, &nl, c);
	*len = sizeof(nl);
	return 0;
}

int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_getsockname();
		return REAL(getsockname)(fd, addr, len);
	}
	pthread_mutex_lock(&table_lock);
	uint32_t pid = s->bound ? s->portid : 0, groups = s->groups;
	pthread_mutex_unlock(&table_lock);
	return put_nladdr(addr, len, pid, groups);
}

int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_getpeername();
		return REAL(getpeername)(fd, addr, len);
	}
	return put_nladdr(addr, len, 0, 0);
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct nlsock *s = lookup(fd);
	if (!s || level != SOL_NETLINK) {
		/* SOL_SOCKET (buffer sizes, ...) applies to the socketpair end, with the same privilege rules. */
		resolve_setsockopt();
		return REAL(setsockopt)(fd, level, name, val, len);
	}
	if (name == NETLINK_ADD_MEMBERSHIP || name == NETLINK_DROP_MEMBERSHIP) {
		unsigned int g;
		if (!val || len < sizeof(int)) {
			errno = EINVAL;
			return -1;
		}
		memcpy(&g, val, sizeof(g));
		if (g == 0 || g > 32) { /* beyond nfnetlink's groups (NFNLGRP_MAX) */
			errno = EINVAL;
			return -1;
		}
		pthread_mutex_lock(&table_lock);
		uint32_t groups = s->groups;
		pthread_mutex_unlock(&table_lock);
		groups = name == NETLINK_ADD_MEMBERSHIP ? groups | (1u << (g - 1)) : groups & ~(1u << (g - 1));
		return set_groups(s, groups);
	}
	if (name <= 0 || name >= BFNFT_NOPT) {
		errno = ENOPROTOOPT;
		return -1;
	}
	if (!val || len < sizeof(int)) {
		errno = EINVAL;
		return -1;
	}
	int v;
	memcpy(&v, val, sizeof(v));
	pthread_mutex_lock(&table_lock);
	s->opt[name] = v != 0;
	pthread_mutex_unlock(&table_lock);
	return 0;
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_getsockopt();
		return REAL(getsockopt)(fd, level, name, val, len);
	}
	int v;
	if (level == SOL_SOCKET && (name == SO_TYPE || name == SO_DOMAIN || name == SO_PROTOCOL)) {
		v = name == SO_TYPE ? SOCK_RAW : name == SO_DOMAIN ? AF_NETLINK : NETLINK_NETFILTER;
	} else if (level == SOL_NETLINK) {
		if (name <= 0 || name >= BFNFT_NOPT || name == NETLINK_ADD_MEMBERSHIP) {
			errno = ENOPROTOOPT;
			return -1;
		}
		pthread_mutex_lock(&table_lock);
		v = s->opt[name];
		pthread_mutex_unlock(&table_lock);
	} else {
		resolve_getsockopt();
		return REAL(getsockopt)(fd, level, name, val, len);
	}
	if (!val || !len || *len < sizeof(int)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(val, &v, sizeof(v));
	*len = sizeof(int);
	return 0;
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t tolen)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_sendto();
		return REAL(sendto)(fd, buf, n, flags, to, tolen);
	}
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = n };
	return nl_send(s, &iov, 1, to, tolen);
}

ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_send();
		return REAL(send)(fd, buf, n, flags);
	}
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = n };
	return nl_send(s, &iov, 1, NULL, 0);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_write();
		return REAL(write)(fd, buf, n);
	}
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = n };
	return nl_send(s, &iov, 1, NULL, 0);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_sendmsg();
		return REAL(sendmsg)(fd, msg, flags);
	}
	if (!msg) {
		errno = EFAULT;
		return -1;
	}
	return nl_send(s, msg->msg_iov, msg->msg_iovlen, msg->msg_name, msg->msg_namelen);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_recvmsg();
		return REAL(recvmsg)(fd, msg, flags);
	}
	if (!msg) {
		errno = EFAULT;
		return -1;
	}
	socklen_t namelen = msg->msg_namelen;
	int mflags = 0;
	ssize_t r = nl_recv(s, msg->msg_iov, msg->msg_iovlen, flags,
			    msg->msg_name, msg->msg_name ? &namelen : NULL, &mflags);
	if (r >= 0) {
		/* libmnl rejects replies whose address length is not that of a sockaddr_nl. */
		if (msg->msg_name)
			msg->msg_namelen = namelen;
		msg->msg_controllen = 0;
		msg->msg_flags = mflags;
	}
	return r;
}

ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *fromlen)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_recvfrom();
		return REAL(recvfrom)(fd, buf, n, flags, from, fromlen);
	}
	struct iovec iov = { .iov_base = buf, .iov_len = n };
	return nl_recv(s, &iov, 1, flags, from, fromlen, NULL);
}

ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_recv();
		return REAL(recv)(fd, buf, n, flags);
	}
	struct iovec iov = { .iov_base = buf, .iov_len = n };
	return nl_recv(s, &iov, 1, flags, NULL, NULL, NULL);
}

ssize_t read(int fd, void *buf, size_t n)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_read();
		return REAL(read)(fd, buf, n);
	}
	struct iovec iov = { .iov_base = buf, .iov_len = n };
	return nl_recv(s, &iov, 1, 0, NULL, NULL, NULL);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_writev();
		return REAL(writev)(fd, iov, iovcnt);
	}
	if (iovcnt < 0) {
		errno = EINVAL;
		return -1;
	}
	return nl_send(s, iov, (size_t)iovcnt, NULL, 0);
}

ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_readv();
		return REAL(readv)(fd, iov, iovcnt);
	}
	if (iovcnt < 0) {
		errno = EINVAL;
		return -1;
	}
	return nl_recv(s, (struct iovec *)iov, (size_t)iovcnt, 0, NULL, NULL, NULL);
}

/* The vector calls are their single-message counterparts in a loop, as the kernel runs them. */
int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_sendmmsg();
		return REAL(sendmmsg)(fd, v, n, flags);
	}
	unsigned int i;
	for (i = 0; i < n; i++) {
		ssize_t r = nl_send(s, v[i].msg_hdr.msg_iov, v[i].msg_hdr.msg_iovlen, v[i].msg_hdr.msg_name, v[i].msg_hdr.msg_namelen);
		if (r < 0)
			return i > 0 ? (int)i : -1;
		v[i].msg_len = (unsigned int)r;
	}
	return (int)i;
}

int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *timeout)
{
	struct nlsock *s = lookup(fd);
	if (!s) {
		resolve_recvmmsg();
		return REAL(recvmmsg)(fd, v, n, flags, timeout);
	}
	unsigned int i;
	for (i = 0; i < n; i++) {
		/* Only the first message may wait; the rest take what is already queued. */
		ssize_t r = recvmsg(fd, &v[i].msg_hdr, i == 0 ? (flags & ~MSG_WAITFORONE) : (flags | MSG_DONTWAIT));
		if (r < 0)
			return i > 0 ? (int)i : -1;
		v[i].msg_len = (unsigned int)r;
	}
	return (int)i;
}

/* Fortified (_FORTIFY_SOURCE) callers reach read/recv/recvfrom through these. */
extern void __chk_fail(void) __attribute__((noreturn));

ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	return read(fd, buf, n);
}

ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	if (n > buflen)
		__chk_fail();
	return recv(fd, buf, n, flags);
}

ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *from, socklen_t *fromlen)
{
	if (n > buflen)
		__chk_fail();
	return recvfrom(fd, buf, n, flags, from, fromlen);
}

int close(int fd)
{
	if (lookup(fd))
		destroy(fd);
	resolve_close();
	return REAL(close)(fd);
}
