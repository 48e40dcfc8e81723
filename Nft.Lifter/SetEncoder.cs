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

    /// <summary>Every map key has one nft key (<see cref="RegisterKey"/>): no operand is masked or shifted.</summary>
    public bool KeysReadBack => _use.Ops.All(op => op.Mask == null && op.Keep == null && op.ShiftLeft == 0 && op.ShiftRight == 0);

    /// <summary>
    /// The nft key (register layout: each field in its register bytes, padded to 4 in a concatenation; the set's key_len) of an element the data plane
    /// holds as the concatenated field bytes of its exact key parts (a set map key, e.g. one the packet path
    /// added); null when some operand is not a plain load (a mask or shift maps several register values to one
    /// field value, so the register key is not known) or the bytes do not fit.
    /// </summary>
    public byte[]? RegisterKey(ReadOnlySpan<byte> fields)
    {
        if (!KeysReadBack) return null;
        var key = new List<byte>();
        foreach (var op in _use.Ops)
        {
            if (fields.Length < op.Field.Bytes) return null;
            var x = new System.Numerics.BigInteger(fields[..op.Field.Bytes], isUnsigned: true, isBigEndian: true);
            fields = fields[op.Field.Bytes..];
            if (x >= System.Numerics.BigInteger.One << op.RegLen * 8) return null;
            var reg = Operand.ToValue(x, op.RegLen).Bytes.ToArray();
            if (op.Reverse) Array.Reverse(reg);
            key.AddRange(reg);
            key.AddRange(new byte[(op.RegLen + 3) / 4 * 4 - op.RegLen]);
        }
        // a single field is its own length (key_len 2 for inet_service), a concatenation pads every field to 4
        var keyLen = (int)(_use.Set.Set.KeyLen ?? 0);
        if (!fields.IsEmpty || keyLen > key.Count || key.Skip(keyLen).Any(b => b != 0)) return null;
        return key.Take(keyLen).ToArray();
    }
}
