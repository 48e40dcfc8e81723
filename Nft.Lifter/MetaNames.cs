using Bpfilter.Backend.Ir;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter;

/// <summary>nft's names of NFT_META_* keys, and the ones the IR has.</summary>
internal static class MetaNames
{
    static readonly string[] Names =
    [
        "len", "protocol", "priority", "mark", "iif", "oif", "iifname", "oifname", "iiftype", "oiftype", "skuid", "skgid",
        "nftrace", "rtclassid", "secmark", "nfproto", "l4proto", "bri_iifname", "bri_oifname", "pkttype", "cpu", "iifgroup",
        "oifgroup", "cgroup", "random", "secpath", "iifkind", "oifkind", "bri_iifpvid", "bri_iifvproto", "time", "day", "hour",
        "sdif", "sdifname", "bri_broute",
    ];

    public static string Of(uint key) => key < Names.Length ? Names[key] : $"key {key}";

    public static MetaKey? IrKey(uint key) => key switch
    {
        MetaExpr.KeyNfProto => MetaKey.NfProto,
        MetaExpr.KeyL4Proto => MetaKey.L4Proto,
        MetaExpr.KeyProtocol => MetaKey.Protocol,
        MetaExpr.KeyIif => MetaKey.Iif,
        MetaExpr.KeyOif => MetaKey.Oif,
        MetaExpr.KeyIifName => MetaKey.IifName,
        MetaExpr.KeyOifName => MetaKey.OifName,
        MetaExpr.KeyMark => MetaKey.Mark,
        MetaExpr.KeyPktType => MetaKey.PktType,
        MetaExpr.KeyLen => MetaKey.Length,
        _ => null,
    };

    /// <summary>Bytes nf_tables loads into the register for the key (nft_meta_get_init).</summary>
    public static int LengthOf(uint key) => key switch
    {
        MetaExpr.KeyNfProto or MetaExpr.KeyL4Proto or MetaExpr.KeyPktType => 1,
        MetaExpr.KeyProtocol or MetaExpr.KeyIifType => 2,
        MetaExpr.KeyIifName or MetaExpr.KeyOifName => 16,
        _ => 4,
    };
}
