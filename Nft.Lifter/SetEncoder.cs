using Bpfilter.Backend.Ir;
using NftSetElement = Nft.Bytecode.Objects.SetElement;

namespace Nft.Lifter;

/// <summary>
/// Converts elements added to or removed from a lifted set the way the lift converted its contents
/// (the operands of the rule that reads it), so an element-only change lifts nothing else.
/// </summary>
public sealed class SetEncoder
{
    readonly TableContext _table;
    readonly SetUse _use;

    internal SetEncoder(TableContext table, SetUse use)
    {
        _table = table;
        _use = use;
    }

    /// <summary>The set's name in the IR.</summary>
    public string IrName => _table.SetName(_use.Set.Name);

    /// <summary>The IR element, or null when the element cannot be expressed exactly on its own (lift the set again).</summary>
    public SetElement? Lift(NftSetElement element) => SetLifter.Element(_table, _use, element);
}
