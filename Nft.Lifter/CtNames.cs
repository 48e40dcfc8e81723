using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter;

/// <summary>nft's names of NFT_CT_* keys, and the ones the IR reads.</summary>
internal static class CtNames
{
    static readonly string[] Names =
    [
        "state", "direction", "status", "mark", "secmark", "expiration", "helper", "l3proto", "saddr", "daddr", "protocol",
        "proto-src", "proto-dst", "label", "packets", "bytes", "avgpkt", "zone", "event", "ip saddr", "ip daddr", "ip6 saddr",
        "ip6 daddr", "id",
    ];

    /// <summary>What a refusal of another ct key lists.</summary>
    public const string Supported = "only ct state, direction, status, mark, zone, expiration, label, l3proto, protocol, " +
        "and original|reply saddr, daddr, ip saddr, ip daddr, ip6 saddr, ip6 daddr, proto-src, proto-dst, zone";

    public static string Of(uint key) => key < Names.Length ? Names[key] : $"key {key}";

    /// <summary>`ct original mark`, `ct reply zone`: how nft names a key read for one direction.</summary>
    public static string Of(uint key, byte? direction) =>
        direction is { } d ? $"{(d == 0 ? "original" : d == 1 ? "reply" : $"direction {d}")} {Of(key)}" : Of(key);

    /// <summary>
    /// The IR field a ct load reads and the bytes nf_tables loads into the register for it (nft_ct_get_init),
    /// or null for keys bpfilter-nft does not read (helper, secmark, packets, bytes, avgpkt, event, id) and for
    /// a direction on a key the kernel takes none for. l3proto and protocol ignore a direction, as the kernel does.
    /// The family-dependent saddr/daddr is 4 bytes in ip tables and 16 in ip6 and inet ones; bpfilter-nft reads
    /// its first 4 bytes (see <see cref="CtReadKey.Src"/>).
    /// </summary>
    public static (CtField Field, int Len)? Read(uint key, byte? direction, byte family)
    {
        if (direction > 1) return null;
        CtDirection? dir = direction is { } d ? (CtDirection)d : null;
        (CtReadKey Key, int Len)? plain = key switch
        {
            CtExpr.KeyState => (CtReadKey.State, 4),
            CtExpr.KeyDirection => (CtReadKey.Direction, 1),
            CtExpr.KeyStatus => (CtReadKey.Status, 4),
            CtExpr.KeyMark => (CtReadKey.Mark, 4),
            CtExpr.KeyExpiration => (CtReadKey.Expiration, 4),
            CtExpr.KeyLabels => (CtReadKey.Label, 16),
            _ => null,
        };
        if (plain is { } p) return dir is null ? (new CtField(p.Key), p.Len) : null;
        return key switch
        {
            CtExpr.KeyL3Protocol => (new CtField(CtReadKey.L3Proto), 1),
            CtExpr.KeyProtocol => (new CtField(CtReadKey.Protocol), 1),
            CtExpr.KeyZone => (new CtField(CtReadKey.Zone, dir), 2),
            _ when dir is null => null,
            CtExpr.KeySrc or CtExpr.KeyDst when family is NfProto.Ipv4 or NfProto.Ipv6 or NfProto.Inet =>
                (new CtField(key == CtExpr.KeySrc ? CtReadKey.Src : CtReadKey.Dst, dir), family == NfProto.Ipv4 ? 4 : 16),
            CtExpr.KeySrcIp => (new CtField(CtReadKey.SrcIp, dir), 4),
            CtExpr.KeyDstIp => (new CtField(CtReadKey.DstIp, dir), 4),
            CtExpr.KeySrcIp6 => (new CtField(CtReadKey.SrcIp6, dir), 16),
            CtExpr.KeyDstIp6 => (new CtField(CtReadKey.DstIp6, dir), 16),
            CtExpr.KeyProtoSrc => (new CtField(CtReadKey.ProtoSrc, dir), 2),
            CtExpr.KeyProtoDst => (new CtField(CtReadKey.ProtoDst, dir), 2),
            _ => null,
        };
    }

    /// <summary>Keys nf_tables holds as host-order numbers (state, status, mark, expiration: u32; zone: u16).</summary>
    public static bool IsHostOrder(CtReadKey key) =>
        key is CtReadKey.State or CtReadKey.Status or CtReadKey.Mark or CtReadKey.Zone or CtReadKey.Expiration;

    /// <summary>Address keys: a cmp may compare a prefix of them (nft's `ct original ip daddr 10.0.0.0/8`).</summary>
    public static bool IsAddress(CtReadKey key) =>
        key is CtReadKey.Src or CtReadKey.Dst or CtReadKey.SrcIp or CtReadKey.DstIp or CtReadKey.SrcIp6 or CtReadKey.DstIp6;
}
