using System.Buffers.Binary;
using Nft.Engine;
using Nft.Netlink;

namespace Nft.Engine.Tests;

/// <summary>Builds nf_tables requests the way nft does and reads the endpoint's replies.</summary>
internal static class NlTestKit
{
    public const uint Port = 4242;
    public const byte Ip = 2, Inet = 1;
    public const NlmFlags Create = NlmFlags.Request | NlmFlags.Create;

    public static NfTablesEndpoint NewEndpoint(NfTablesOptions? o = null) =>
        new(o ?? new NfTablesOptions { Requester = p => (p, "nft") });

    /// <summary>One message: type (nf_tables), flags, seq, family, attributes written by <paramref name="attrs"/>.</summary>
    public static byte[] Msg(byte type, NlmFlags flags, uint seq, byte family, Action<NetlinkWriter>? attrs = null)
    {
        var w = new NetlinkWriter();
        var t = w.BeginNfMessage(Nfnl.SubsysNftables, type, flags, seq, 0, family, 0);
        attrs?.Invoke(w);
        w.EndMessage(t);
        return w.ToArray();
    }

    public static byte[] Batch(params byte[][] msgs) => BatchOf(msgs, end: true);

    public static byte[] BatchOf(byte[][] msgs, bool end, uint? genId = null)
    {
        var w = new NetlinkWriter();
        var b = w.BeginMessage(Nfnl.MsgBatchBegin, NlmFlags.Request, 1, 0);
        w.WriteRaw([0, 0, 0, Nfnl.SubsysNftables]);
        if (genId is uint g) w.PutU32Be(Nfnl.BatchGenId, g);
        w.EndMessage(b);
        foreach (var m in msgs) w.WriteRaw(m);
        if (end)
        {
            var e = w.BeginMessage(Nfnl.MsgBatchEnd, NlmFlags.Request, 99, 0);
            w.WriteRaw([0, 0, 0, Nfnl.SubsysNftables]);
            w.EndMessage(e);
        }
        return w.ToArray();
    }

    public static byte[] AddTable(uint seq, string name, byte family = Ip, NlmFlags extra = 0) =>
        Msg(0, Create | extra, seq, family, w => { w.PutString(1, name); w.PutU32Be(2, 0); });

    public static byte[] AddChain(uint seq, string table, string name, byte family = Ip, (uint Hook, int Prio)? hook = null) =>
        Msg(3, Create, seq, family, w =>
        {
            w.PutString(1, table);
            w.PutString(3, name);
            if (hook is { } h)
            {
                var n = w.BeginNested(4);
                w.PutU32Be(1, h.Hook);
                w.PutU32Be(2, (uint)h.Prio);
                w.EndNested(n);
                w.PutU32Be(5, 1);
                w.PutString(7, "filter");
            }
        });

    /// <summary>NEWOBJ: a named object of <paramref name="type"/> (NFT_OBJECT_*) in table `t`, its NFTA_OBJ_DATA written by <paramref name="data"/>, then <paramref name="more"/>.</summary>
    public static byte[] NewObj(uint seq, string name, uint type, Action<NetlinkWriter> data, Action<NetlinkWriter>? more = null) =>
        Msg(18, Create, seq, Ip, w =>
        {
            w.PutString(1, "t");
            w.PutString(2, name);
            w.PutU32Be(3, type);
            var d = w.BeginNested(4);
            data(w);
            w.EndNested(d);
            more?.Invoke(w);
        });

    /// <summary>A rule of immediate verdicts / counters, appended (or placed by position/handle).</summary>
    public static byte[] AddRule(uint seq, string table, string chain, Action<NetlinkWriter> exprs, byte family = Ip,
        NlmFlags flags = Create | NlmFlags.Append, ulong? position = null, ulong? handle = null) =>
        Msg(6, flags, seq, family, w =>
        {
            w.PutString(1, table);
            w.PutString(2, chain);
            if (handle is ulong h) w.PutU64Be(3, h);
            if (position is ulong p) w.PutU64Be(6, p);
            var l = w.BeginNested(4);
            exprs(w);
            w.EndNested(l);
        });

    public static void Verdict(NetlinkWriter w, int code, string? chain = null)
    {
        var e = w.BeginNested(1);
        w.PutString(1, "immediate");
        var d = w.BeginNested(2);
        w.PutU32Be(1, 0);
        var data = w.BeginNested(2);
        var v = w.BeginNested(2);
        w.PutU32Be(1, (uint)code);
        if (chain != null) w.PutString(2, chain);
        w.EndNested(v);
        w.EndNested(data);
        w.EndNested(d);
        w.EndNested(e);
    }

    /// <summary>A counter expression as attribute <paramref name="attr"/>: a rule's list element (1) or an element's NFTA_SET_ELEM_EXPR (7).</summary>
    public static void Counter(NetlinkWriter w, ulong packets = 0, ulong bytes = 0, ushort attr = 1)
    {
        var e = w.BeginNested(attr);
        w.PutString(1, "counter");
        var d = w.BeginNested(2);
        w.PutU64Be(1, bytes);
        w.PutU64Be(2, packets);
        w.EndNested(d);
        w.EndNested(e);
    }

    /// <summary>NEWSET of an ipv4_addr set with `flags timeout` (and `size` when given), set id = seq.</summary>
    public static byte[] NewTimeoutSet(uint seq, string table, string name, uint? size = null) => Msg(9, Create, seq, Ip, w =>
    {
        w.PutString(1, table);
        w.PutString(2, name);
        w.PutU32Be(3, 0x10); // NFT_SET_TIMEOUT
        w.PutU32Be(4, 7);
        w.PutU32Be(5, 4);
        if (size is uint n)
        {
            var desc = w.BeginNested(9);
            w.PutU32Be(1, n); // NFTA_SET_DESC_SIZE
            w.EndNested(desc);
        }
        w.PutU32Be(10, seq);
    });

    public static byte[] Dump(byte type, byte family = 0, Action<NetlinkWriter>? attrs = null) =>
        Msg(type, NlmFlags.Request | NlmFlags.Dump, 7, family, attrs);

    /// <summary>All messages of all datagrams, in order.</summary>
    public static List<(NlMsgHeader H, byte[] Bytes)> Messages(IEnumerable<byte[]> datagrams)
    {
        var l = new List<(NlMsgHeader, byte[])>();
        foreach (var d in datagrams)
        {
            var r = new NetlinkMessageReader(d);
            while (r.TryRead(out var m)) l.Add((m.Header, m.Bytes.ToArray()));
            Assert.False(r.Malformed, "reply datagram does not parse");
        }
        return l;
    }

    /// <summary>errno of an NLMSG_ERROR message (positive), and its NLMSGERR_ATTR_OFFS, or -1.</summary>
    public static (int Errno, int Offset) Error(byte[] msg)
    {
        Assert.Equal(NlMsgType.Error, BinaryPrimitives.ReadUInt16LittleEndian(msg.AsSpan(4)));
        int errno = -BinaryPrimitives.ReadInt32LittleEndian(msg.AsSpan(16));
        int offset = -1;
        var flags = (NlmFlags)BinaryPrimitives.ReadUInt16LittleEndian(msg.AsSpan(6));
        if ((flags & NlmFlags.AckTlvs) != 0)
        {
            int inner = (flags & NlmFlags.Capped) != 0 ? NlMsgHeader.Size : (int)BinaryPrimitives.ReadUInt32LittleEndian(msg.AsSpan(20));
            int tlv = 20 + NetlinkLimits.Align(inner);
            var r = new AttributeReader(msg.AsSpan(tlv, (int)BinaryPrimitives.ReadUInt32LittleEndian(msg) - tlv), tlv);
            while (r.TryRead(out var a)) if (a.Type == NlmsgErrAttr.Offs) offset = (int)a.U32();
        }
        return (errno, offset);
    }

    /// <summary>Offset of attribute <paramref name="type"/> at the top level of an nf_tables message.</summary>
    public static int AttrOffset(byte[] msg, ushort type)
    {
        var r = new AttributeReader(msg.AsSpan(20), 20);
        while (r.TryRead(out var a)) if (a.Type == type) return a.Offset;
        throw new InvalidOperationException($"attribute {type} not in message");
    }

    /// <summary>The top-level attributes of an nf_tables message as a table.</summary>
    public static Dictionary<ushort, byte[]> Attrs(byte[] msg)
    {
        var d = new Dictionary<ushort, byte[]>();
        var r = new AttributeReader(msg.AsSpan(20, (int)BinaryPrimitives.ReadUInt32LittleEndian(msg) - 20), 20);
        while (r.TryRead(out var a)) d[a.Type] = a.Payload.ToArray();
        return d;
    }

    /// <summary>One NFTA_LIST_ELEM of a NEWSETELEM: an IPv4 key, and NFT_SET_ELEM_INTERVAL_END when <paramref name="end"/>.</summary>
    public static void Ipv4Element(NetlinkWriter w, uint key, bool end)
    {
        var el = w.BeginNested(1);
        var k = w.BeginNested(1);
        Span<byte> v = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(v, key);
        w.PutBytes(1, v);
        w.EndNested(k);
        if (end) w.PutU32Be(3, 1); // NFT_SET_ELEM_INTERVAL_END
        w.EndNested(el);
    }

    public static ulong Be64(byte[] b) => BinaryPrimitives.ReadUInt64BigEndian(b);
    public static uint Be32(byte[] b) => BinaryPrimitives.ReadUInt32BigEndian(b);
    public static string Str(byte[] b) => System.Text.Encoding.UTF8.GetString(b).TrimEnd('\0');
}
