using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter;

internal sealed partial class RuleLifter
{
    /// <summary>
    /// `add|update|delete @s { KEY [timeout T] }` (nft_dynset) on a plain set, `... @m { KEY [timeout T] : DATA }`
    /// on a map of values. The timeout of new elements is the rule's own or else the set's default
    /// (priv->timeout ?: set->timeout), what `update` renews an expiring element to; a rule the engine notes made while
    /// its set had no default makes elements that never expire (<see cref="DynsetExpr.ElementsNeverExpire"/>). New elements carry the rule's own statement list (rules giving one set
    /// different lists each give theirs: <see cref="Set.RuleStatementLists"/>). Statements but `counter`, `quota` and
    /// `limit` on the elements, interval sets and data the IR does not hold as the register's bytes (<see cref="MapData"/>)
    /// stay refused.
    /// </summary>
    void Dynset(DynsetExpr d, int i)
    {
        var set = _table.Source.FindSet(d.SetName) ?? throw _rule.Refuse(i, $"dynset on set '{d.SetName}' that does not exist");
        var flags = set.Set.SetFlags;
        var statements = PacketElementStatements.Lift(set, d, e => _rule.Refuse(i, e));
        if (((d.Flags ?? 0) & DynsetExpr.NFT_DYNSET_F_INV) != 0)
            throw _rule.Refuse(i, "an inverted dynset is not supported by bpfilter-nft");
        bool map = (flags & NftSetFlags.Map) != 0;
        // nft_dynset_init refuses these (EOPNOTSUPP, EINVAL) and the engine with it; never lifted
        if (map != (d.SRegData != null) || set.Set.DataType == Nft.Bytecode.Objects.Set.VerdictDataType)
            throw _rule.Refuse(i, $"dynset on '{d.SetName}' with a data register that does not match the set");
        // nf_tables refuses it too: no interval backend (rbtree, pipapo) has an update operation
        if ((flags & NftSetFlags.Interval) != 0)
            throw _rule.Refuse(i, $"dynset on interval set '{d.SetName}' is not supported");
        int keyLen = (int)(set.Set.KeyLen ?? 0);
        if (keyLen == 0) throw _rule.Refuse(i, $"set '{d.SetName}' has no key length");
        var (key, ops) = Concat(_regs.Read(d.SRegKey, keyLen, i), Use.SetKey, i);
        var name = _table.UseSet(set, key, ops, SetUseKind.Set, _rule, i);
        var op = d.Op switch { DynsetExpr.OpAdd => SetUpdateOp.Add, DynsetExpr.OpUpdate => SetUpdateOp.Update, _ => SetUpdateOp.Delete };
        // each element keeps the list of the rule that made it (a delete makes none), tagged in its value
        var made = op == SetUpdateOp.Delete ? default : statements;
        if (_table.NoteWritten(set.Name, made) > Set.MaxElementLists)
            throw _rule.Refuse(i, $"set '{d.SetName}' is updated from the packet path by rules giving its elements more than the " +
                $"{Set.MaxElementLists} statement lists bpfilter-nft dispatches on");
        // nft_dynset_eval's data is read before the set is touched (a missing field broke the rule before it)
        var data = map ? MapData(set, d.SRegData!.Value, i) : null;
        ulong ms = d.Timeout is ulong own and > 0 ? own : set.Set.Timeout ?? 0;
        if (d.Timeout is > 0 && !TableContext.HasTimeouts(set))
            throw _rule.Refuse(i, $"dynset with a timeout on set '{d.SetName}' without `flags timeout`");
        if (ms > (ulong)TimeSpan.MaxValue.TotalMilliseconds) throw _rule.Refuse(i, $"dynset timeout {ms}ms is out of range");
        TimeSpan? timeout = op != SetUpdateOp.Delete && ms > 0 && TableContext.HasTimeouts(set) ? TimeSpan.FromMilliseconds(ms) : null;
        // delete finds the element by its key alone, but its data is loaded first all the same (a missing field breaks)
        AddStateful(i, new SetUpdateStatement(op, name, key, timeout, data, made, NewElementsExpire: !d.ElementsNeverExpire));
    }

    /// <summary>
    /// The data `add|update @m { KEY : DATA }` gives a new element, as nft_set_elem_init copies it from the register:
    /// the register bytes themselves, so only what the IR holds in the same bytes: a constant, or one whole
    /// byte-aligned packet field (network order in both). Host-order, masked, shifted or concatenated data is refused.
    /// </summary>
    StatementValue MapData(SourceSet set, uint reg, int i)
    {
        int dataLen = (int)(set.Set.DataLen ?? 0);
        if (dataLen == 0) throw _rule.Refuse(i, $"map '{set.Name}' has no data length");
        var parts = _regs.Read(reg, dataLen, i);
        if (parts is [({ Source: ConstSource c, Mask: null, Hton: false, Unsupported: null }, var n)] && n == dataLen && c.Data.Length >= dataLen)
            return new StatementValue.Immediate(new Value(c.Data.AsSpan(0, dataLen)));
        if (parts is [({ Source: PayloadSource } v, _)])
        {
            var (key, ops) = Concat(parts, Use.SetKey, i);
            if (ops is [{ Reverse: false, Keep: null, ShiftRight: 0, ShiftLeft: 0, Mask: null, Field: PayloadField { OffsetBits: var o, LengthBits: var l } }]
                && o % 8 == 0 && l == 8 * dataLen && v.Len == dataLen)
                return new StatementValue.FromKey(key);
        }
        throw _rule.Refuse(i, $"dynset on map '{set.Name}' with data other than a constant or a whole packet field is not supported by bpfilter-nft");
    }
}
