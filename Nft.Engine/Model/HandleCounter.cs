namespace Nft.Engine.Model;

/// <summary>
/// A table's handle generator, shared by its chains, rules, sets, objects and flowtables. It lives
/// outside the immutable records on purpose: the kernel allocates handles while preparing a batch,
/// so a batch that aborts still uses them up.
/// </summary>
public sealed class HandleCounter
{
    ulong _last;

    public HandleCounter(ulong last = 0) => _last = last;

    public ulong Last => _last;
    public ulong Next() => ++_last;
}
