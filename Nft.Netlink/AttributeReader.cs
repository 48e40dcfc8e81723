namespace Nft.Netlink;

/// <summary>
/// Reads consecutive netlink attributes from a span. Every length is checked; a malformed
/// attribute raises <see cref="NetlinkException"/> (EINVAL) carrying its absolute offset.
/// </summary>
public ref struct AttributeReader
{
    readonly ReadOnlySpan<byte> _buf;
    readonly int _base;
    int _pos;

    public AttributeReader(ReadOnlySpan<byte> buffer, int baseOffset)
    {
        _buf = buffer;
        _base = baseOffset;
        _pos = 0;
    }

    /// <summary>Absolute offset of the next attribute.</summary>
    public readonly int Position => _base + _pos;
    public readonly bool End => _buf.Length - _pos < NetlinkLimits.AttrHeaderSize;

    public bool TryRead(out NetlinkAttribute attr)
    {
        int remaining = _buf.Length - _pos;
        if (remaining < NetlinkLimits.AttrHeaderSize)
        {
            // Trailing bytes shorter than a header are ignored by the kernel's nla_parse as well
            // (it warns); treat them as the end.
            attr = default;
            return false;
        }
        var s = _buf[_pos..];
        ushort len = (ushort)(s[0] | s[1] << 8);
        ushort type = (ushort)(s[2] | s[3] << 8);
        if (len < NetlinkLimits.AttrHeaderSize || len > remaining)
            throw new NetlinkException(Errno.EINVAL, $"malformed attribute: length {len} with {remaining} bytes left", _base + _pos);
        attr = new NetlinkAttribute(type, s[NetlinkLimits.AttrHeaderSize..len], _base + _pos);
        _pos = Math.Min(_buf.Length, _pos + NetlinkLimits.Align(len));
        return true;
    }
}
