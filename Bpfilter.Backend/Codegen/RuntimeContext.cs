namespace Bpfilter.Backend.Codegen;

/// <summary>
/// The parsed-packet context the prologue keeps on the BPF stack (offsets from R10), and the flag
/// bits in <see cref="Flags"/>. Offsets are relative to the start of what the flavor sees: the
/// Ethernet header for XDP/TC, the network header for netfilter.
/// Every value is a u32 stored in the upper half of an 8-byte slot: the verifier does not track
/// such unaligned stores as spilled constants, so all parse outcomes (IPv4, IPv6 with various
/// extension headers, fragments, VLAN) look alike after the prologue and the verifier explores the
/// rules once instead of once per outcome. Packet offsets read back are bounded with
/// <see cref="MaxOffset"/>.
/// </summary>
internal static class RuntimeContext
{
    public const short Flags = -4;
    /// <summary>Offset of the network header.</summary>
    public const short L3Off = -12;
    /// <summary>
    /// Offset of the transport header (valid with <see cref="HasL4Proto"/>); in a non-first fragment
    /// nf_tables' thoff, which its payload fast path reads.
    /// </summary>
    public const short L4Off = -20;
    /// <summary>EtherType of the network header (meta protocol), host order.</summary>
    public const short L3Proto = -28;
    /// <summary>Transport protocol number (meta l4proto).</summary>
    public const short L4Proto = -36;
    /// <summary>Bytes visible from offset 0.</summary>
    public const short PacketSize = -44;
    /// <summary>IPv6 extension-header walk: next header and cursor.</summary>
    public const short WalkNext = -52, WalkCursor = -60;
    /// <summary>Header offsets never exceed this (the IPv6 walk stops there), so masking with it is exact.</summary>
    public const int MaxOffset = 0x3fff;
    /// <summary>Set lookup key buffer.</summary>
    public const short Key = -136;
    public const int KeySize = 64;
    /// <summary>Copy target for packet bytes where direct access is impossible (netfilter).</summary>
    public const short Scratch = -200;
    public const int ScratchSize = 64;
    /// <summary>
    /// struct bpf_dynptr (16 bytes, 8-aligned) for netfilter, below <see cref="FrameSize"/>: a global function is
    /// passed the frame above it as memory, which must not hold a dynptr (the verifier refuses to hand one over as bytes).
    /// </summary>
    public const short Dynptr = -448;
    /// <summary>u32 index for counter lookups.</summary>
    public const short CounterKey = -224;
    /// <summary>A dynset's jiffies64 read once per statement (u64) and the other copy's slot of its set (u32).</summary>
    public const short DynsetNow = -208, DynsetOtherCopy = -212;
    /// <summary>
    /// A dynset's claim of an expired element it replaces (u32: this CPU's marker) and the rounds left of its wait for
    /// another CPU's replacement (u32, not 8-aligned: the verifier does not track it, so the wait's iterations look alike).
    /// </summary>
    public const short DynsetClaim = -216, DynsetWaitRounds = -220;
    /// <summary>
    /// Which copy of every set map this run reads (0 or 1), read once from the generation map before
    /// the first rule: a batch switched while the packet runs is seen whole or not at all.
    /// </summary>
    public const short Generation = -228;
    /// <summary>u32 key of a classifier's class, vector and rule lookups.</summary>
    public const short ClassifierKey = -232;
    /// <summary>A classifier's vector pointer per field (see <c>ClassifierMatcher</c>), 8-byte slots.</summary>
    public static readonly short[] ClassifierVectors = [-240, -248, -256, -264, -272, -280, -288, -296];
    /// <summary>
    /// A classifier's match-anything vector pointer per field (8-byte slots): in the key buffer, which the classifier's
    /// class lookups are done with when they are taken and nothing uses during its scan (the frame has no other room).
    /// </summary>
    public static readonly short[] ClassifierAnyVectors = [Key, Key + 8, Key + 16, Key + 24, Key + 32, Key + 40, Key + 48, Key + 56];
    /// <summary>The summary word a classifier is scanning (u64).</summary>
    public const short ClassifierWord = -304;
    /// <summary>
    /// Netfilter: how many bytes of <see cref="L3Cache"/> and <see cref="L4Cache"/> hold the packet (u32 each):
    /// min(cache size, bytes the skb has from the header on), so a read inside a cache succeeds exactly
    /// when bpf_dynptr_read of the same bytes would.
    /// </summary>
    public const short L3CacheLen = -308, L4CacheLen = -312;
    /// <summary>
    /// Netfilter: the first bytes of the network header, copied once by the entry (8-aligned): an IPv4
    /// header without options or an IPv6 header without extension headers and the transport header's first
    /// <see cref="L4CacheSize"/> bytes.
    /// </summary>
    public const short L3Cache = -376;
    public const int L3CacheSize = 64;
    /// <summary>Netfilter: the first bytes at <see cref="L4Off"/>, copied once after parsing (8-aligned).</summary>
    public const short L4Cache = -400;
    public const int L4CacheSize = 24;
    /// <summary>An IPv6 reject's saved source and destination addresses (32 bytes), once the rules are done
    /// (XDP only; below the netfilter caches all the same, so no two flavors' slots overlap).</summary>
    public const short RejectAddresses = -432;

    /// <summary>
    /// Bytes of the frame (from R10 down) a regular chain's subprogram works on: every slot above but <see cref="Dynptr"/>.
    /// A call passes R10 - FrameSize; a global function sees it as a struct of this size (see <c>Libbpf/ProgramBtf</c>).
    /// </summary>
    public const int FrameSize = 432;

    // Flag bits.
    public const int HasL2 = 1, HasVlan = 2, HasNetwork = 4, HasL4Proto = 8, Fragment = 16;

    public const int EtherTypeIpv4 = 0x0800, EtherTypeIpv6 = 0x86dd, EtherTypeVlan = 0x8100, EtherTypeQinQ = 0x88a8;

    /// <summary>How many IPv6 extension headers the prologue walks before giving up (no transport header then).</summary>
    public const int MaxIpv6ExtensionHeaders = 8;
}
