/*
 * A netlink event subscriber that stops reading, run under libbfnft.so against bpfilterd
 * (tests/Bpfilter.Daemon.Tests/Server/MonitorTests.cs): sets SO_RCVBUF to argv[1], joins
 * NFNLGRP_NFTABLES, prints "subscribed groups=0x..", waits for SIGUSR1 (the test commits meanwhile),
 * then for the first event and a second more, then drains what is queued and prints "messages=N enobufs=M", then waits up to 20 s for one more
 * event and prints "next=0xTYPE" (events flow again after a loss).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

int main(int argc, char **argv)
{
	static char buf[1 << 16];
	int fd = socket(AF_NETLINK, SOCK_RAW, 12 /* NETLINK_NETFILTER */);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	int rcv = argc > 1 ? atoi(argv[1]) : 4096, group = 7;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
		perror("NETLINK_ADD_MEMBERSHIP");
		return 1;
	}
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	struct sockaddr_nl me;
	socklen_t ml = sizeof(me);
	getsockname(fd, (struct sockaddr *)&me, &ml);
	printf("subscribed groups=0x%x\n", me.nl_groups);
	fflush(stdout);
	int sig;
	sigwait(&usr1, &sig);
	/* The daemon delivers a commit's events after nft's reply, and libbfnft's reader thread queues them
	 * asynchronously: on a loaded machine none may have arrived yet. Wait for the first, then give the
	 * rest of the batch's frames a moment, so the drain sees what the commit sent. */
	struct pollfd first = { .fd = fd, .events = POLLIN };
	poll(&first, 1, 20000);
	usleep(1000000);
	int messages = 0, enobufs = 0;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == ENOBUFS) {
			enobufs++;
			continue;
		}
		if (n <= 0)
			break;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n))
			messages++;
	}
	printf("messages=%d enobufs=%d\n", messages, enobufs);
	fflush(stdout);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 20000) == 1 && recv(fd, buf, sizeof(buf), 0) >= (ssize_t)sizeof(struct nlmsghdr))
		printf("next=0x%x\n", ((struct nlmsghdr *)buf)->nlmsg_type);
	else
		printf("next=none\n");
	return 0;
}
