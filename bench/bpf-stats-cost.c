// Per-run cost of BPF run-time statistics (what bpfilterd --metrics turns on with BPF_ENABLE_STATS): a trivial
// XDP program run with BPF_PROG_TEST_RUN, 5,000,000 runs with statistics off, then on, five rounds.
//   gcc -O2 -o /tmp/bpf-stats-cost bench/bpf-stats-cost.c -lbpf && sudo /tmp/bpf-stats-cost
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static int run(int fd, int repeat) {
    char pkt[64] = {0};
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = sizeof pkt, .repeat = repeat);
    if (bpf_prog_test_run_opts(fd, &o)) { perror("test_run"); return -1; }
    return o.duration; // ns per run
}
int main(void) {
    struct bpf_insn insns[] = {
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 2 }, // r0 = XDP_PASS
        { .code = BPF_JMP | BPF_EXIT },
    };
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "cost", "GPL", insns, 2, NULL);
    if (fd < 0) { perror("load"); return 1; }
    for (int round = 0; round < 5; round++) {
        int off = run(fd, 5000000);
        int sfd = bpf_enable_stats(BPF_STATS_RUN_TIME);
        if (sfd < 0) { perror("enable_stats"); return 1; }
        int on = run(fd, 5000000);
        close(sfd);
        printf("round %d: stats off %d ns/run, on %d ns/run\n", round, off, on);
    }
    return 0;
}
