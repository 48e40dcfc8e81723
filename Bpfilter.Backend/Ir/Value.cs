using System.Collections.Immutable;
using System.Globalization;
using System.Net;

namespace Bpfilter.Backend.Ir;

/// <summary>
/// A constant compared against a field: an unsigned big-endian number exactly as wide as the field
/// (ceil(bits/8) bytes). Payload fields therefore keep packet (network) byte order; meta values that
/// nf_tables keeps in host order (mark, iif, length) are converted to big-endian by the front-end.
/// A sub-byte field (ip dscp, vlan id) is right-aligned: `ip dscp 0x2e` is the single byte 0x2e.
/// </summary>
public sealed record Value
{
    public Value(ImmutableArray<byte> bytes) => Bytes = bytes.IsDefault ? ImmutableArray<byte>.Empty : bytes;
    public Value(ReadOnlySpan<byte> bytes) => Bytes = bytes.ToImmutableArray();

    public ImmutableArray<byte> Bytes { get; }
    public int Length => Bytes.Length;

    public static Value FromBytes(params byte[] bytes) => new(bytes.AsSpan());

    /// <summary>Big-endian number of <paramref name="bits"/> width; throws if it does not fit.</summary>
    public static Value FromUInt(ulong number, int bits)
    {
        if (bits <= 0 || bits > 64) throw new ArgumentOutOfRangeException(nameof(bits));
        if (bits < 64 && number >> bits != 0)
            throw new ArgumentOutOfRangeException(nameof(number), $"{number} does not fit in {bits} bits");
        var len = (bits + 7) / 8;
        var b = new byte[len];
        for (var i = len - 1; i >= 0; i--) { b[i] = (byte)number; number >>= 8; }
        return new Value(b.AsSpan());
    }

    public static Value Ipv4(string address) => FromAddress(address, System.Net.Sockets.AddressFamily.InterNetwork);
    public static Value Ipv6(string address) => FromAddress(address, System.Net.Sockets.AddressFamily.InterNetworkV6);

    public static Value Ether(string mac)
    {
        var parts = mac.Split(':');
        if (parts.Length != 6) throw new FormatException($"bad MAC address '{mac}'");
        return new Value(parts.Select(p => byte.Parse(p, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToImmutableArray());
    }

    /// <summary>An interface name as nf_tables compares it: IFNAMSIZ (16) bytes, zero padded.</summary>
    public static Value IfName(string name)
    {
        var b = new byte[16];
        var n = System.Text.Encoding.ASCII.GetBytes(name);
        if (n.Length > 15) throw new ArgumentException($"interface name '{name}' longer than 15 bytes");
        n.CopyTo(b, 0);
        return new Value(b.AsSpan());
    }

    private static Value FromAddress(string address, System.Net.Sockets.AddressFamily family)
    {
        var ip = IPAddress.Parse(address);
        if (ip.AddressFamily != family) throw new FormatException($"'{address}' is not a {family} address");
        return new Value(ip.GetAddressBytes().AsSpan());
    }

    /// <summary>The value as a number; only for values up to 8 bytes.</summary>
    public ulong ToUInt64()
    {
        if (Length > 8) throw new InvalidOperationException($"value of {Length} bytes is not a 64-bit number");
        ulong v = 0;
        foreach (var b in Bytes) v = v << 8 | b;
        return v;
    }

    public bool Equals(Value? other) => other is not null && Bytes.AsSpan().SequenceEqual(other.Bytes.AsSpan());

    public override int GetHashCode()
    {
        var h = new HashCode();
        h.AddBytes(Bytes.AsSpan());
        return h.ToHashCode();
    }

    public override string ToString() => "0x" + Convert.ToHexString(Bytes.AsSpan()).ToLowerInvariant();

    /// <summary>Formats the value the way an operator reads it for a field of the given kind.</summary>
    public string Format(ValueDisplay display)
    {
        try
        {
            switch (display)
            {
                case ValueDisplay.Ipv4 when Length == 4:
                case ValueDisplay.Ipv6 when Length == 16:
                    return new IPAddress(Bytes.AsSpan()).ToString();
                case ValueDisplay.Ether when Length == 6:
                    return string.Join(":", Bytes.Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
                case ValueDisplay.Decimal when Length <= 8:
                    return ToUInt64().ToString(CultureInfo.InvariantCulture);
                case ValueDisplay.String:
                    var s = System.Text.Encoding.ASCII.GetString(Bytes.AsSpan()).TrimEnd('\0');
                    if (s.All(c => c >= 0x20 && c < 0x7f)) return "\"" + s + "\"";
                    break;
            }
        }
        catch (ArgumentException) { }
        return ToString();
    }
}

/// <summary>How a field's values are printed in ToString (display only, never part of identity).</summary>
public enum ValueDisplay { Hex, Decimal, Ipv4, Ipv6, Ether, String }
