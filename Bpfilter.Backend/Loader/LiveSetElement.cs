namespace Bpfilter.Backend.Loader;

/// <summary>
/// An element as the copy of a packet-written set map that packets read now holds it: the key's field bytes
/// (as <see cref="Codegen.SetLayout"/> concatenates them), its expiry in jiffies64 (null: never) and the timeout
/// in jiffies the packet path gave it (null: none, or the control plane wrote the element).
/// </summary>
public sealed record LiveSetElement(byte[] Key, ulong? Expires, ulong? Timeout);
