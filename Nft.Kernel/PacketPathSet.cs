using Nft.Bytecode.Objects;

namespace Nft.Kernel;

/// <summary>
/// A placed set the kernel's packet path writes (a kernel-placed dynset, or element statements the kernel counts),
/// with the elements the caller's transaction itself added (new keys, changed values, renewed timeouts) and removed.
/// The kernel holds elements the placement never sent (added by packets) and may lack some it did (deleted by packets,
/// expired): its elements are diffed from the transaction's own changes, not from what was placed, so that deleting
/// an element a packet added reaches the kernel and an element a packet added is not sent again.
/// <see cref="Live"/>: for a set the kernel takes over from another packet path (BPF's), the elements that one holds,
/// each with the milliseconds it has left (NFTA_SET_ELEM_EXPIRATION) and its statements' state: the new kernel set
/// starts with them, as the kernel's own set would have gone on holding them.
/// </summary>
public sealed record PacketPathSet(byte Family, string Table, string Set, IReadOnlyList<SetElement> Added, IReadOnlyList<SetElement> Removed,
    IReadOnlyList<SetElement>? Live = null);
