#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct bucket { struct bpf_spin_lock lock; __u32 pad; __u64 last; __u64 tokens; };
struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 16); __type(key, __u32); __type(value, struct bucket); } limits SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 1); __type(key, __u32); __array(values, struct inner); } outer SEC(".maps") = { .values = { &limits } };
#define NSEC 1000000000ULL
static __always_inline int bucket(__u32 slot, __u64 cost, __u64 max) {
  __u32 z = 0; void *m = bpf_map_lookup_elem(&outer, &z); if (!m) return 0;
  struct bucket *b = bpf_map_lookup_elem(m, &slot); if (!b) return 0;
  __u64 now = bpf_ktime_get_ns();
  int ok;
  bpf_spin_lock(&b->lock);
  __u64 last = b->last; if (now < last) now = last;
  __u64 t = b->tokens + now - last; if (t > max) t = max;
  b->last = now;
  __s64 d = (__s64)(t - cost);
  if (d >= 0) { b->tokens = d; ok = 1; } else { b->tokens = t; ok = 0; }
  bpf_spin_unlock(&b->lock);
  return ok;
}
SEC("socket") int lim_pkts(struct __sk_buff *skb) { return bucket(0, NSEC / 10, NSEC / 10 * 3); }
SEC("socket") int lim_bytes(struct __sk_buff *skb) { return bucket(1, NSEC * (__u64)skb->len / 1000, NSEC * (1000 + 500) / 1000); }
char _license[] SEC("license") = "GPL";
