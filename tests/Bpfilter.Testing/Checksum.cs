using System.Net;

namespace Bpfilter.Testing;

/// <summary>The Internet checksum (RFC 1071) and the TCP/UDP/ICMPv6 pseudo-headers.</summary>
public static class Checksum
{
    static uint Sum(ReadOnlySpan<byte> data, uint sum = 0)
    {
        int i = 0;
        for (; i + 1 < data.Length; i += 2) sum += (uint)(data[i] << 8 | data[i + 1]);
        if (i < data.Length) sum += (uint)(data[i] << 8);
        return sum;
    }

    static ushort Fold(uint sum)
    {
        while (sum >> 16 != 0) sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }

    public static ushort Compute(ReadOnlySpan<byte> data) => Fold(Sum(data));

    /// <summary>Checksum of an upper-layer message over the IPv4 or IPv6 pseudo-header.</summary>
    public static ushort WithPseudoHeader(IPAddress src, IPAddress dst, int protocol, ReadOnlySpan<byte> message)
    {
        uint sum = Sum(src.GetAddressBytes());
        sum = Sum(dst.GetAddressBytes(), sum);
        // Protocol and length: IPv4 packs them in 4 bytes, IPv6 in 8; as 16-bit words both add up the same.
        sum += (uint)protocol;
        sum += (uint)(message.Length & 0xffff) + (uint)(message.Length >> 16);
        ushort r = Fold(Sum(message, sum));
        // UDP sends a computed 0 as 0xffff (0 means "no checksum"); harmless for the others' verification.
        return protocol == 17 && r == 0 ? (ushort)0xffff : r;
    }
}
