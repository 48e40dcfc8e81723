/*
 * Exercises the socket calls libbfnft.so emulates, the way nft/libmnl and other netlink users
 * make them, and prints one "key=value" line per observation. Run under LD_PRELOAD against a
 * daemon whose endpoint answers (see tests/Bpfilter.Daemon.Tests/Server/InterposerSemanticsTests.cs):
 *   type 0x100 -> datagram A: messages of 20, 40 and 60 bytes; datagram B: one of 100 bytes
 *   type 0x101 -> one NLMSG_ERROR carrying an extack message and offset
 *   anything else -> nothing
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static int sendreq(int fd, uint16_t type, uint32_t seq)
{
	struct nlmsghdr h = { .nlmsg_len = sizeof(h), .nlmsg_type = type, .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = seq };
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };
	return (int)sendto(fd, &h, sizeof(h), 0, (struct sockaddr *)&k, sizeof(k));
}

static int readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0);
}

static uint32_t portid_of(int fd)
{
	struct sockaddr_nl a;
	socklen_t l = sizeof(a);
	memset(&a, 0xff, sizeof(a));
	if (getsockname(fd, (struct sockaddr *)&a, &l) < 0 || l != sizeof(a) || a.nl_family != AF_NETLINK)
		return 0xdeadbeef;
	return a.nl_pid;
}

static void *blocking_reader(void *arg)
{
	int fd = *(int *)arg;
	static char buf[8192];
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	return (void *)(intptr_t)n;
}

int main(void)
{
	char buf[8192];
	ssize_t n;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	printf("socket=%s\n", fd >= 0 ? "ok" : strerror(errno));
	if (fd < 0)
		return 1;
	printf("portid_unbound=%u\n", portid_of(fd));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	int one = 1;
	printf("ext_ack_set=%d\n", setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one)));
	int v = -1;
	socklen_t vl = sizeof(v);
	getsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, &vl);
	printf("ext_ack_get=%d\n", v);
	vl = sizeof(v);
	getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &vl);
	printf("so_protocol=%d\n", v);
	printf("readable_empty=%d\n", readable(fd));
	errno = 0;
	n = recv(fd, buf, sizeof(buf), 0);
	printf("recv_empty=%zd errno=%s\n", n, strerrorname_np(errno));

	printf("sendto=%d\n", sendreq(fd, 0x100, 7));
	printf("portid_is_pid=%d\n", portid_of(fd) == (uint32_t)getpid());
	printf("readable_queued=%d\n", readable(fd));

	/* 64 bytes hold the 20- and 40-byte messages of datagram A, not the 60-byte one. */
	struct sockaddr_nl from;
	struct iovec iov = { .iov_base = buf, .iov_len = 64 };
	struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1 };
	memset(&from, 0xff, sizeof(from));
	n = recvmsg(fd, &m, 0);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	printf("split=%zd namelen=%u family=%u nl_pid=%u groups=%u flags=%d first_len=%u first_pid_is_portid=%d\n", n,
	       m.msg_namelen, from.nl_family, from.nl_pid, from.nl_groups, m.msg_flags, h->nlmsg_len,
	       h->nlmsg_pid == (uint32_t)getpid());
	/* 40 bytes cannot hold the 60-byte message left: truncated and dropped, as netlink does. */
	iov.iov_len = 40;
	m.msg_namelen = sizeof(from);
	n = recvmsg(fd, &m, 0);
	printf("trunc=%zd flags_trunc=%d\n", n, (m.msg_flags & MSG_TRUNC) != 0);
	/* Datagram B: peek, then read. Two iovecs to check scatter. */
	n = recv(fd, buf, sizeof(buf), MSG_PEEK);
	printf("peek=%zd readable_after_peek=%d\n", n, readable(fd));
	struct iovec two[2] = { { .iov_base = buf, .iov_len = 30 }, { .iov_base = buf + 1000, .iov_len = 100 } };
	struct msghdr m2 = { .msg_iov = two, .msg_iovlen = 2 };
	n = recvmsg(fd, &m2, 0);
	printf("scatter=%zd second_part_byte=%d namelen=%u\n", n, (unsigned char)buf[1000], m2.msg_namelen);
	printf("readable_drained=%d\n", readable(fd));
	errno = 0;
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	printf("recv_drained=%zd errno=%s\n", n, strerrorname_np(errno));

	/* MSG_TRUNC in flags: the real length of the datagram is returned. */
	sendreq(fd, 0x100, 8);
	n = recv(fd, buf, 10, MSG_TRUNC);
	printf("msg_trunc_len=%zd\n", n);
	n = recv(fd, buf, sizeof(buf), 0);
	printf("after_trunc=%zd\n", n);

	/* Several iovecs in one sendmsg are one request (one batch). */
	struct nlmsghdr a = { .nlmsg_len = 16, .nlmsg_type = 0x100, .nlmsg_seq = 9 }, b = { .nlmsg_len = 16, .nlmsg_type = 0x33, .nlmsg_seq = 10 };
	struct iovec siov[2] = { { &a, 16 }, { &b, 16 } };
	struct msghdr sm = { .msg_iov = siov, .msg_iovlen = 2 };
	printf("sendmsg=%zd\n", sendmsg(fd, &sm, 0));
	int datagrams = 0;
	while (recv(fd, buf, sizeof(buf), 0) > 0)
		datagrams++;
	printf("sendmsg_datagrams=%d\n", datagrams);

	/* write()/read() are send/recv too. */
	struct nlmsghdr w = { .nlmsg_len = 16, .nlmsg_type = 0x100 };
	n = write(fd, &w, 16);
	printf("write=%zd read=%zd\n", n, read(fd, buf, sizeof(buf)));
	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
	/* writev/readv too, and recvmmsg takes what is queued without waiting past the first. */
	struct iovec wv[2] = { { &w, 8 }, { (char *)&w + 8, 8 } };
	n = writev(fd, wv, 2);
	struct iovec rv[2] = { { buf, 50 }, { buf + 50, 100 } };
	printf("writev=%zd readv=%zd\n", n, readv(fd, rv, 2));
	struct mmsghdr mm[3];
	struct iovec mi[3] = { { buf, 4096 }, { buf + 4096, 2048 }, { buf + 6144, 2048 } };
	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < 3; i++) {
		mm[i].msg_hdr.msg_iov = &mi[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	int got = recvmmsg(fd, mm, 3, 0, NULL);
	printf("recvmmsg=%d len=%u\n", got, mm[0].msg_len);

	/* Extended ACK off: TLVs stripped. Then CAP_ACK on: echoed request capped to its header. */
	int zero = 0;
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &zero, sizeof(zero));
	sendreq(fd, 0x101, 11);
	n = recv(fd, buf, sizeof(buf), 0);
	printf("noext=%zd len=%u flags=0x%x\n", n, h->nlmsg_len, h->nlmsg_flags);
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	sendreq(fd, 0x101, 12);
	n = recv(fd, buf, sizeof(buf), 0);
	printf("capped=%zd len=%u flags=0x%x\n", n, h->nlmsg_len, h->nlmsg_flags);
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &zero, sizeof(zero));
	sendreq(fd, 0x101, 13);
	n = recv(fd, buf, sizeof(buf), 0);
	printf("full=%zd len=%u flags=0x%x\n", n, h->nlmsg_len, h->nlmsg_flags);

	/* Other netlink families reach the kernel untouched. */
	int rt = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	vl = sizeof(v);
	getsockopt(rt, SOL_SOCKET, SO_PROTOCOL, &v, &vl);
	printf("route_protocol=%d\n", v);
	close(rt);

	/* A second netfilter socket gets its own port id, as the kernel's autobind gives. */
	int fd2 = socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
	struct sockaddr_nl any = { .nl_family = AF_NETLINK };
	bind(fd2, (struct sockaddr *)&any, sizeof(any));
	printf("second_portid_distinct=%d second_portid_negative=%d\n", portid_of(fd2) != portid_of(fd), (int32_t)portid_of(fd2) < 0);

	/* Blocking socket: a reader waits until another thread's send queues a reply. */
	pthread_t t;
	pthread_create(&t, NULL, blocking_reader, &fd2);
	usleep(100000);
	sendreq(fd2, 0x100, 14);
	void *res;
	pthread_join(t, &res);
	printf("blocking_recv=%zd\n", (ssize_t)(intptr_t)res);
	close(fd2);
	/* Closing a socket another thread is blocked reading: that read ends with EBADF, as on close the fd is gone. */
	int fd3 = socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
	pthread_create(&t, NULL, blocking_reader, &fd3);
	usleep(100000);
	close(fd3);
	pthread_join(t, &res);
	printf("read_during_close=%zd\n", (ssize_t)(intptr_t)res);
	close(fd);
	/* After close the number is an ordinary fd again. */
	int p[2];
	pipe(p);
	printf("write_after_close=%zd\n", write(p[1], "x", 1));
	return 0;
}
