using System.Buffers.Binary;
using System.Text;

namespace Nft.Netlink;

/// <summary>
/// Builds netlink messages into a growable buffer. Messages and nests are opened with a start
/// token and closed by the matching End call, which back-patches the length.
/// </summary>
public sealed class NetlinkWriter
{
    byte[] _buf;
    int _len;
    /// <summary>Where in <see cref="_buf"/> the written bytes start; every length, offset, token and padding is relative to it.</summary>
    readonly int _origin;

    public NetlinkWriter(int capacity = 4096) => _buf = new byte[capacity];

    /// <summary>
    /// Writes into <paramref name="buffer"/> from <paramref name="origin"/> on (the bytes before it are the caller's, e.g. a
    /// file's header written once the rest is done): padding is as if written from 0. Every byte handed out is cleared first,
    /// so the buffer may be uninitialized. It is replaced (the caller's bytes before the origin copied too) if it runs out.
    /// </summary>
    public NetlinkWriter(byte[] buffer, int origin)
    {
        if (origin < 0 || origin > buffer.Length) throw new ArgumentOutOfRangeException(nameof(origin));
        _buf = buffer;
        _origin = origin;
    }

    /// <summary>The buffer written into: the one given, or the one that replaced it; the written bytes are at the origin.</summary>
    public byte[] Buffer => _buf;

    public int Length => _len;
    public ReadOnlySpan<byte> WrittenSpan => _buf.AsSpan(_origin, _len);
    public byte[] ToArray() => WrittenSpan.ToArray();
    public void Clear() => _len = 0;
    /// <summary>Drops everything written after <paramref name="length"/> (a dump chunk that overflowed).</summary>
    public void Truncate(int length)
    {
        if (length < 0 || length > _len) throw new ArgumentOutOfRangeException(nameof(length));
        _len = length;
    }

    Span<byte> Reserve(int n)
    {
        if (_origin + _len + n > _buf.Length)
            Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _origin + _len + n));
        var s = _buf.AsSpan(_origin + _len, n);
        s.Clear();
        _len += n;
        return s;
    }

    void Pad() => Reserve(NetlinkLimits.Align(_len) - _len);

    public readonly record struct Token(int Start);

    public Token BeginMessage(ushort type, NlmFlags flags, uint seq, uint pid)
    {
        Pad();
        int start = _len;
        new NlMsgHeader(0, type, flags, seq, pid).Write(Reserve(NlMsgHeader.Size));
        return new Token(start);
    }

    public Token BeginNfMessage(byte subsys, byte msg, NlmFlags flags, uint seq, uint pid, byte family, ushort resId, byte version = Nfnl.Version0)
    {
        var t = BeginMessage(Nfnl.Type(subsys, msg), flags, seq, pid);
        new NfGenMsg(family, version, resId).Write(Reserve(NfGenMsg.Size));
        return t;
    }

    public void EndMessage(Token t)
    {
        Pad();
        BinaryPrimitives.WriteUInt32LittleEndian(_buf.AsSpan(_origin + t.Start), (uint)(_len - t.Start));
    }

    /// <summary>Appends raw bytes (a header body, or a whole pre-built message), padded to 4.</summary>
    public void WriteRaw(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(Reserve(bytes.Length));
        Pad();
    }

    public Token BeginNested(ushort type)
    {
        int start = _len;
        var h = Reserve(NetlinkLimits.AttrHeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(h[2..], (ushort)(type | NlaFlags.Nested));
        return new Token(start);
    }

    /// <summary>
    /// A nest with an exact raw type: the kernel opens nf_tables nests without NLA_F_NESTED
    /// (nla_nest_start_noflag) while nft sets it, and byte-exact re-encoding needs both.
    /// </summary>
    public Token BeginNestedRaw(ushort rawType)
    {
        int start = _len;
        var h = Reserve(NetlinkLimits.AttrHeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(h[2..], rawType);
        return new Token(start);
    }

    public void EndNested(Token t)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(_origin + t.Start), (ushort)(_len - t.Start));
        Pad();
    }

    /// <summary>Overwrites bytes already written (e.g. non-zero padding a peer sent, replayed for byte-exact output).</summary>
    public void Overwrite(int offset, ReadOnlySpan<byte> bytes)
    {
        if (offset < 0 || offset + bytes.Length > _len) throw new ArgumentOutOfRangeException(nameof(offset));
        bytes.CopyTo(_buf.AsSpan(_origin + offset));
    }

    /// <summary>An attribute with an exact raw type (flags included) and payload.</summary>
    public void PutRaw(ushort rawType, ReadOnlySpan<byte> payload)
    {
        var s = Reserve(NetlinkLimits.AttrHeaderSize + payload.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(s, (ushort)(NetlinkLimits.AttrHeaderSize + payload.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(s[2..], rawType);
        payload.CopyTo(s[NetlinkLimits.AttrHeaderSize..]);
        Pad();
    }

    public void PutBytes(ushort type, ReadOnlySpan<byte> payload) => PutRaw(type, payload);

    public void PutU8(ushort type, byte v) => PutRaw(type, [v]);

    public void PutU16Be(ushort type, ushort v)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, v);
        PutRaw(type, b);
    }

    public void PutU32Be(ushort type, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, v);
        PutRaw(type, b);
    }

    public void PutU32(ushort type, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        PutRaw(type, b);
    }

    public void PutU64Be(ushort type, ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, v);
        PutRaw(type, b);
    }

    /// <summary>A NUL-terminated string, as libmnl's mnl_attr_put_strz and the kernel's nla_put_string write it.</summary>
    public void PutString(ushort type, string s)
    {
        int n = Encoding.UTF8.GetByteCount(s);
        Span<byte> b = n < 512 ? stackalloc byte[n + 1] : new byte[n + 1];
        Encoding.UTF8.GetBytes(s, b);
        b[n] = 0;
        PutRaw(type, b);
    }
}
