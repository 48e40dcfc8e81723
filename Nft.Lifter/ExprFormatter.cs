using System.Buffers.Binary;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter;

/// <summary>Formats expressions the way `nft --debug=netlink` (libnftnl) prints them, for the lifter's listing.</summary>
public static class ExprFormatter
{
    public static string Format(Expression e) => "[ " + Body(e) + " ]";

    static string Body(Expression e) => e switch
    {
        PayloadExpr { IsSet: false } p => $"payload load {p.Len}b @ {Base(p.Base)} + {p.Offset} => reg {p.DReg}",
        PayloadExpr p => $"payload write reg {p.SReg} => {p.Len}b @ {Base(p.Base)} + {p.Offset} csum_type {p.CsumType ?? 0} csum_off {p.CsumOffset ?? 0} csum_flags 0x{p.CsumFlags ?? 0:x}",
        MetaExpr { IsSet: false } m => $"meta load {MetaNames.Of(m.Key)} => reg {m.DReg}",
        MetaExpr m => $"meta set {MetaNames.Of(m.Key)} with reg {m.SReg}",
        CmpExpr c => $"cmp {CmpOp(c.Op)} reg {c.SReg} {Data(c.Data)}",
        BitwiseExpr { Operation: BitwiseExpr.OpMaskXor } b => $"bitwise reg {b.DReg} = ( reg {b.SReg} & {Data(b.Mask!)} ) ^ {Data(b.Xor!)}",
        BitwiseExpr { Operation: BitwiseExpr.OpLshift or BitwiseExpr.OpRshift } b =>
            $"bitwise reg {b.DReg} = ( reg {b.SReg} {(b.Operation == BitwiseExpr.OpLshift ? "<<" : ">>")} {Data(b.Data!)} )",
        BitwiseExpr b => $"bitwise reg {b.DReg} = ( reg {b.SReg} op {b.Operation} reg {b.SReg2} )",
        RangeExpr r => $"range {(r.Op == RangeExpr.OpNeq ? "neq" : "eq")} reg {r.SReg} {Data(r.From)} {Data(r.To)}",
        LookupExpr l => $"lookup reg {l.SReg} set {l.Set}{(l.DReg is { } d ? $" dreg {d}" : "")} 0x{l.Flags ?? 0:x}",
        ImmediateExpr { Verdict: { } v } i => $"immediate reg {i.DReg} {VerdictText(v)}",
        ImmediateExpr i => $"immediate reg {i.DReg} {Data(i.Data)}",
        CounterExpr c => $"counter pkts {c.Packets ?? 0} bytes {c.Bytes ?? 0}",
        DynsetExpr d => $"dynset {(d.Op switch { DynsetExpr.OpAdd => "add", DynsetExpr.OpUpdate => "update", _ => "delete" })} reg_key {d.SRegKey} set {d.SetName}",
        ObjRefExpr o => o.IsMap ? $"objref sreg {o.SetSReg} set {o.SetName}" : $"objref type {o.ImmType} name {o.ImmName}",
        ByteorderExpr b => $"byteorder reg {b.DReg} = {(b.Op == ByteorderExpr.OpHton ? "hton" : "ntoh")}(reg {b.SReg}, {b.Size}, {b.Len})",
        OpaqueExpr o => $"{o.Kind} 0x{Convert.ToHexString(o.Data).ToLowerInvariant()}",
        _ => e.Name,
    };

    static string Base(uint b) => b switch
    {
        PayloadExpr.BaseLinkLayer => "link header",
        PayloadExpr.BaseNetwork => "network header",
        PayloadExpr.BaseTransport => "transport header",
        PayloadExpr.BaseInner => "inner header",
        _ => $"base {b}",
    };

    static string CmpOp(uint op) => op switch
    {
        CmpExpr.Eq => "eq", CmpExpr.Neq => "neq", CmpExpr.Lt => "lt", CmpExpr.Lte => "lte", CmpExpr.Gt => "gt", _ => "gte",
    };

    /// <summary>Register data as libnftnl prints it: 32-bit words in host order.</summary>
    static string Data(NftData d)
    {
        if (d is VerdictData v) return VerdictText(v.Verdict);
        var b = ((ValueData)d).Value;
        var padded = new byte[(b.Length + 3) / 4 * 4];
        b.CopyTo(padded, 0);
        var words = new List<string>();
        for (int i = 0; i < padded.Length; i += 4)
            words.Add($"0x{BinaryPrimitives.ReadUInt32LittleEndian(padded.AsSpan(i)):x8}");
        return string.Join(" ", words);
    }

    static string VerdictText(Verdict v) => v.Code switch
    {
        Verdict.Jump => $"jump -> {v.Chain}",
        Verdict.Goto => $"goto -> {v.Chain}",
        _ => v.ToString(),
    };
}
