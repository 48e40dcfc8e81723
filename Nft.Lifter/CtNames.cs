using Bpfilter.Backend.Ir;
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

    public static string Of(uint key) => key < Names.Length ? Names[key] : $"key {key}";

    /// <summary>`ct original mark`, `ct reply zone`: how nft names a key read for one direction.</summary>
    public static string Of(uint key, byte? direction) =>
        direction is { } d ? $"{(d == 0 ? "original" : d == 1 ? "reply" : $"direction {d}")} {Of(key)}" : Of(key);

    public static CtReadKey? IrKey(uint key) => key switch
    {
        CtExpr.KeyState => CtReadKey.State,
        CtExpr.KeyDirection => CtReadKey.Direction,
        CtExpr.KeyStatus => CtReadKey.Status,
        CtExpr.KeyMark => CtReadKey.Mark,
        CtExpr.KeyZone => CtReadKey.Zone,
        _ => null,
    };

    /// <summary>Bytes nf_tables loads into the register for the key (nft_ct_get_init).</summary>
    public static int LengthOf(CtReadKey key) => key switch
    {
        CtReadKey.Direction => 1,
        CtReadKey.Zone => 2,
        _ => 4,
    };
}
