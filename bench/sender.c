// Packet generator for bench/suite.py: sends one Ethernet frame (given as hex) as fast as it can out of
// IFNAME for SECONDS through an AF_PACKET socket with PACKET_QDISC_BYPASS, in sendmmsg batches of 64.
// Prints the number of frames the socket accepted. Built by suite.py: gcc -O2 -o sender sender.c
// Usage: sender IFNAME FRAME-HEX SECONDS
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: %s IFNAME FRAME-HEX SECONDS\n", argv[0]); return 2; }
  size_t hexlen = strlen(argv[2]);
  if (hexlen % 2 || hexlen / 2 < ETH_ZLEN || hexlen / 2 > 1514) { fprintf(stderr, "bad frame\n"); return 2; }
  unsigned char frame[1514];
  size_t len = hexlen / 2;
  for (size_t i = 0; i < len; i++)
    if (sscanf(argv[2] + 2 * i, "%2hhx", &frame[i]) != 1) { fprintf(stderr, "bad hex\n"); return 2; }
  double seconds = atof(argv[3]);
  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) { perror("socket"); return 1; }
  int one = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0) { perror("PACKET_QDISC_BYPASS"); return 1; }
  struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex(argv[1]), .sll_halen = ETH_ALEN };
  if (!to.sll_ifindex) { perror(argv[1]); return 1; }
  memcpy(to.sll_addr, frame, ETH_ALEN);
  struct iovec iov = { .iov_base = frame, .iov_len = len };
  struct mmsghdr msgs[BATCH];
  for (int i = 0; i < BATCH; i++)
    msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov, .msg_iovlen = 1 } };
  unsigned long long sent = 0;
  double end = now() + seconds;
  while (now() < end) {
    int n = sendmmsg(fd, msgs, BATCH, 0);
    if (n > 0) sent += (unsigned)n;  // a full receive queue drops without an error: the receiver counts
  }
  printf("%llu\n", sent);
  return 0;
}
