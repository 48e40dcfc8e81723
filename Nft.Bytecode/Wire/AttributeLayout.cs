namespace Nft.Bytecode.Wire;

/// <summary>
/// One attribute of a decoded nest as it appeared on the wire: its raw type (NLA_F_* flags
/// included) and, for an attribute the typed model does not hold, its payload.
/// </summary>
/// <remarks>
/// nft does not always write canonical attributes: some strings go without their NUL
/// (mnl_attr_put_str) and padding bytes may hold leftovers from its buffer. Such details are kept
/// (<see cref="Padding"/>, <see cref="StringBytes"/>) and replayed while the value is unchanged.
/// </remarks>
public readonly record struct LayoutEntry(ushort RawType, byte[]? Unknown, byte[]? Padding = null, byte[]? StringBytes = null)
{
    public bool IsKnown => Unknown is null;
}

/// <summary>
/// How the attributes of one nest were laid out when decoded: order, NLA_F_NESTED flags, and any
/// attribute the model does not know (kept verbatim). nft (libnftnl) and the kernel write the same
/// attributes in different orders and with different nest flags; keeping the layout lets a decoded
/// record re-encode byte for byte in either direction. Records built in code have no layout and
/// encode in the kernel's dump order.
/// </summary>
public sealed class AttributeLayout : IEquatable<AttributeLayout>
{
    public AttributeLayout(ushort nestRawType, LayoutEntry[] entries)
    {
        NestRawType = nestRawType;
        _entries = entries;
    }

    readonly LayoutEntry[] _entries;

    /// <summary>Raw type of the nest attribute that held these attributes (0 at message level).</summary>
    public ushort NestRawType { get; }
    public IReadOnlyList<LayoutEntry> Entries => _entries;

    /// <summary>The entries without an interface enumerator: every nest of every record saved walks them.</summary>
    internal ReadOnlySpan<LayoutEntry> Span => _entries;

    /// <summary>Whether an attribute of <paramref name="type"/> (flags masked off) was in the nest.</summary>
    public bool Has(int type)
    {
        foreach (var e in _entries) if ((e.RawType & Nft.Netlink.NlaFlags.TypeMask) == type) return true;
        return false;
    }

    public bool HasUnknown
    {
        get
        {
            foreach (var e in _entries) if (!e.IsKnown) return true;
            return false;
        }
    }

    public bool Equals(AttributeLayout? o)
    {
        if (o is null || o.NestRawType != NestRawType || o.Entries.Count != Entries.Count) return false;
        for (int i = 0; i < Entries.Count; i++)
        {
            var (a, b) = (Entries[i], o.Entries[i]);
            if (a.RawType != b.RawType || a.IsKnown != b.IsKnown) return false;
            if (!a.IsKnown && !a.Unknown.AsSpan().SequenceEqual(b.Unknown)) return false;
            if (!Same(a.Padding, b.Padding) || !Same(a.StringBytes, b.StringBytes)) return false;
        }
        return true;
    }

    static bool Same(byte[]? a, byte[]? b) => a is null ? b is null : b is not null && a.AsSpan().SequenceEqual(b);

    public override bool Equals(object? obj) => Equals(obj as AttributeLayout);
    public override int GetHashCode() => HashCode.Combine(NestRawType, Entries.Count);
}

/// <summary>Which attribute order and nest flags an encoder uses.</summary>
public enum WireFormat
{
    /// <summary>As decoded (layout kept), or the kernel's dump order for records built in code.</summary>
    AsDecoded,
    /// <summary>The kernel's dump order and nest flags, ignoring any decoded layout (for dumps and echoes).</summary>
    Kernel,
}

/// <summary>
/// The attribute slot a record is asked to write: its raw type, plus the decoded entry when the
/// record was decoded (to replay non-canonical string bytes). Converts to the raw type.
/// </summary>
public readonly struct AttrSlot
{
    public AttrSlot(ushort rawType, LayoutEntry? entry = null)
    {
        RawType = rawType;
        Entry = entry;
    }

    public ushort RawType { get; }
    public LayoutEntry? Entry { get; }
    public int Type => RawType & Nft.Netlink.NlaFlags.TypeMask;

    public static implicit operator ushort(AttrSlot s) => s.RawType;
}
