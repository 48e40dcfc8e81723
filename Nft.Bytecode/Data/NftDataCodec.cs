using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Data;

/// <summary>Decodes and encodes struct nft_data nests (nft_data_init / nft_data_dump in the kernel).</summary>
public static class NftDataCodec
{
    const int EOVERFLOW = 75;

    static readonly ushort[] DataOrder = [NftaData.Value, NftaData.Verdict];
    static readonly ushort[] VerdictOrder = [NftaVerdict.Code, NftaVerdict.Chain, NftaVerdict.ChainId];

    /// <summary>Decodes the nest <paramref name="nest"/> (e.g. NFTA_CMP_DATA).</summary>
    public static NftData Decode(NetlinkAttribute nest, int maxValueLen = NftLimits.DataValueMaxLen)
    {
        var p = AttrParser.Of(nest);
        if (p.TryGet(NftaData.Value, out var v))
        {
            // the kernel tries VALUE first and ignores a VERDICT next to it
            if (v.Length == 0) throw new NetlinkException(Errno.EINVAL, "empty data value", v.Offset);
            if (v.Length > maxValueLen) throw new NetlinkException(EOVERFLOW, $"data value of {v.Length} bytes exceeds {maxValueLen}", v.Offset);
            var bytes = v.Payload.ToArray();
            return new ValueData(bytes) { Layout = p.Layout() };
        }
        if (p.TryGet(NftaData.Verdict, out var vn))
        {
            var verdict = DecodeVerdict(vn);
            return new VerdictData(verdict) { Layout = p.Layout() };
        }
        throw new NetlinkException(Errno.EINVAL, "data without value or verdict", nest.Offset);
    }

    public static Verdict DecodeVerdict(NetlinkAttribute nest)
    {
        var p = AttrParser.Of(nest);
        int code = p.S32Be(NftaVerdict.Code) ?? throw new NetlinkException(Errno.EINVAL, "verdict without code", nest.Offset);
        string? chain = p.Str(NftaVerdict.Chain, NftLimits.ChainNameMax);
        uint? chainId = p.U32Be(NftaVerdict.ChainId);
        switch (code)
        {
            case Verdict.Continue or Verdict.Break or Verdict.Return:
                break;
            case Verdict.Jump or Verdict.Goto:
                if (chain is null && chainId is null)
                    throw new NetlinkException(Errno.EINVAL, "jump/goto without a chain", nest.Offset);
                break;
            case Verdict.Accept or Verdict.Drop or Verdict.Queue:
                break;
            default:
                // the kernel takes exact netfilter codes only (no errno or queue bits)
                throw new NetlinkException(Errno.EINVAL, $"invalid verdict code {code}", nest.Offset);
        }
        return new Verdict(code, chain, chainId) { Layout = p.Layout() };
    }

    /// <summary>Writes <paramref name="data"/> as a nest of <paramref name="type"/> (flags from the decoded layout, if any).</summary>
    public static void Encode(NetlinkWriter w, ushort type, NftData data, WireFormat format = WireFormat.AsDecoded)
    {
        ushort raw = AttrWriter.NestType(data.Layout, type, format);
        var t = AttrWriter.BeginNest(w, raw);
        AttrWriter.Write(w, data.Layout, DataOrder, new DataSource(data), format);
        w.EndNested(t);
    }

    public static void EncodeVerdict(NetlinkWriter w, ushort type, Verdict v, WireFormat format = WireFormat.AsDecoded)
    {
        ushort raw = AttrWriter.NestType(v.Layout, type, format);
        var t = AttrWriter.BeginNest(w, raw);
        AttrWriter.Write(w, v.Layout, VerdictOrder, new VerdictSource(v), format);
        w.EndNested(t);
    }

    readonly struct DataSource(NftData d) : IAttributeSource
    {
        public bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
        {
            switch (raw & NlaFlags.TypeMask, d)
            {
                case (NftaData.Value, ValueData v): w.PutRaw(raw, v.Value); return true;
                case (NftaData.Verdict, VerdictData v): EncodeVerdict(w, raw, v.Verdict, f); return true;
                default: return false;
            }
        }
    }

    readonly struct VerdictSource(Verdict v) : IAttributeSource
    {
        public bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
        {
            switch (raw & NlaFlags.TypeMask)
            {
                case NftaVerdict.Code: w.PutU32Be(raw, (uint)v.Code); return true;
                case NftaVerdict.Chain when v.Chain != null: AttrWriter.PutString(w, raw, v.Chain); return true;
                case NftaVerdict.ChainId when v.ChainId != null: w.PutU32Be(raw, v.ChainId.Value); return true;
                default: return false;
            }
        }
    }
}
