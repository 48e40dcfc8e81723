using System.Buffers.Binary;
using System.Text;
using Nft.Netlink;

namespace Bpfilter.Daemon.NfTables;

/// <summary>
/// Builds the messages nf_tables sends. Unlike <see cref="NetlinkWriter"/>, nests carry no
/// NLA_F_NESTED flag, because nf_tables opens them with nla_nest_start_noflag and dumps should look
/// like the kernel's byte for byte.
/// </summary>
internal sealed class NlBuilder
{
    byte[] _buf;
    int _len;

    public NlBuilder(int capacity = 1024) => _buf = new byte[capacity];

    public int Length => _len;
    public ReadOnlySpan<byte> Written => _buf.AsSpan(0, _len);
    public byte[] ToArray() => Written.ToArray();
    public void Clear() => _len = 0;
    public void Truncate(int len) => _len = len;

    Span<byte> Reserve(int n)
    {
        if (_len + n > _buf.Length)
            Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _len + n));
        var s = _buf.AsSpan(_len, n);
        s.Clear();
        _len += n;
        return s;
    }

    void Pad() => Reserve(NetlinkLimits.Align(_len) - _len);

    public int BeginMessage(ushort type, NlmFlags flags, uint seq, uint pid)
    {
        Pad();
        int start = _len;
        new NlMsgHeader(0, type, flags, seq, pid).Write(Reserve(NlMsgHeader.Size));
        return start;
    }

    public int BeginNft(byte msg, NlmFlags flags, uint seq, uint pid, byte family, ushort resId)
    {
        int start = BeginMessage(Nfnl.Type(Nfnl.SubsysNftables, msg), flags, seq, pid);
        new NfGenMsg(family, Nfnl.Version0, resId).Write(Reserve(NfGenMsg.Size));
        return start;
    }

    public void EndMessage(int start)
    {
        Pad();
        BinaryPrimitives.WriteUInt32LittleEndian(_buf.AsSpan(start), (uint)(_len - start));
    }

    public int BeginNest(ushort type)
    {
        int start = _len;
        BinaryPrimitives.WriteUInt16LittleEndian(Reserve(NetlinkLimits.AttrHeaderSize)[2..], type);
        return start;
    }

    public void EndNest(int start)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(start), (ushort)(_len - start));
        Pad();
    }

    public void Raw(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(Reserve(bytes.Length));
        Pad();
    }

    public void Put(ushort type, ReadOnlySpan<byte> payload)
    {
        var s = Reserve(NetlinkLimits.AttrHeaderSize + payload.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(s, (ushort)(NetlinkLimits.AttrHeaderSize + payload.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(s[2..], type);
        payload.CopyTo(s[NetlinkLimits.AttrHeaderSize..]);
        Pad();
    }

    public void PutU32Be(ushort type, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, v);
        Put(type, b);
    }

    public void PutU64Be(ushort type, ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, v);
        Put(type, b);
    }

    public void PutU32(ushort type, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        Put(type, b);
    }

    public void PutString(ushort type, string s)
    {
        int n = Encoding.UTF8.GetByteCount(s);
        Span<byte> b = n < 512 ? stackalloc byte[n + 1] : new byte[n + 1];
        Encoding.UTF8.GetBytes(s, b);
        b[n] = 0;
        Put(type, b);
    }
}
