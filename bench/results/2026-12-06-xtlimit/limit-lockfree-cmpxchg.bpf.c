#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
/* one u64 per slot: T = last - tokens (the moment the bucket was/would be empty); tokens(now) = min(now - T, max) */
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 16); __type(key, __u32); __type(value, __u64); } limits SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); } retries SEC(".maps");
#define NSEC 1000000000ULL
static __always_inline int bucket(__u32 slot, __u64 cost, __u64 max) {
  __u64 *t = bpf_map_lookup_elem(&limits, &slot); if (!t) return 0;
  for (int i = 0; i < 64; i++) {
    __u64 old = *(volatile __u64 *)t;
    __u64 now = bpf_ktime_get_ns();
    __u64 e = old; if ((__s64)(now - max - e) > 0) e = now - max;   /* T' = max(T, now - max) */
    __s64 tokens = (__s64)(now - e);
    int ok = tokens - (__s64)cost >= 0;
    __u64 nt = ok ? e + cost : e;
    if (__sync_val_compare_and_swap(t, old, nt) == old) return ok;
    __u32 k = 0; __u64 *r = bpf_map_lookup_elem(&retries, &k); if (r) __sync_fetch_and_add(r, 1);
  }
  __u32 k = 1; __u64 *r = bpf_map_lookup_elem(&retries, &k); if (r) __sync_fetch_and_add(r, 1);
  return 0;
}
SEC("socket") int lim_pkts(struct __sk_buff *skb) { return bucket(0, NSEC / 10, NSEC / 10 * 3); }
SEC("socket") int lim_bytes(struct __sk_buff *skb) {
  return bucket(1, NSEC * (__u64)skb->len / 1000, NSEC * (1000 + 500) / 1000);
}
char _license[] SEC("license") = "GPL";
