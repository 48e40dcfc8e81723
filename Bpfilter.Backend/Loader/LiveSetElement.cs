namespace Bpfilter.Backend.Loader;

/// <summary>
/// An element as the copy of a packet-written set map that packets read now holds it: the key's field bytes
/// (as <see cref="Codegen.SetLayout"/> concatenates them), its expiry in jiffies64 (null: never) and the timeout
/// in jiffies the packet path gave it (null: none, or the control plane wrote the element), and the state of the
/// statements the packet path gave it (empty for an element the control plane wrote, or a set without them).
/// </summary>
public sealed record LiveSetElement(byte[] Key, ulong? Expires, ulong? Timeout)
{
    public IReadOnlyList<PacketElementState> State { get; init; } = [];
    /// <summary>A map's data, as nft's register bytes (null for a set).</summary>
    public byte[]? Data { get; init; }
}

/// <summary>A packet-path element's statement and its state: a counter's packets and bytes, a quota's bytes consumed (Packets 0).</summary>
public readonly record struct PacketElementState(Ir.Statement Statement, ulong Packets, ulong Bytes);
