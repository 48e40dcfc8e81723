using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter;

internal sealed partial class RuleLifter
{
    /// <summary>
    /// `add|update|delete @s { KEY [timeout T] }` (nft_dynset) on a plain set. The timeout of new elements is
    /// the rule's own or else the set's default (priv->timeout ?: set->timeout). Per-element statements
    /// (meters, `{ KEY limit rate ... }`, `counter`), maps and interval sets stay refused.
    /// </summary>
    void Dynset(DynsetExpr d, int i)
    {
        var set = _table.Source.FindSet(d.SetName) ?? throw _rule.Refuse(i, $"dynset on set '{d.SetName}' that does not exist");
        var flags = set.Set.SetFlags;
        var statements = PacketElementStatements.Lift(set, d, e => _rule.Refuse(i, e));
        if (((d.Flags ?? 0) & DynsetExpr.NFT_DYNSET_F_INV) != 0)
            throw _rule.Refuse(i, "an inverted dynset is not supported by bpfilter-nft");
        if (d.SRegData != null || (flags & NftSetFlags.Map) != 0)
            throw _rule.Refuse(i, $"dynset on map '{d.SetName}' is not supported by bpfilter-nft (only sets)");
        // nf_tables refuses it too: no interval backend (rbtree, pipapo) has an update operation
        if ((flags & NftSetFlags.Interval) != 0)
            throw _rule.Refuse(i, $"dynset on interval set '{d.SetName}' is not supported");
        int keyLen = (int)(set.Set.KeyLen ?? 0);
        if (keyLen == 0) throw _rule.Refuse(i, $"set '{d.SetName}' has no key length");
        var (key, ops) = Concat(_regs.Read(d.SRegKey, keyLen, i), Use.SetKey, i);
        var name = _table.UseSet(set, key, ops, SetUseKind.Set, _rule, i);
        if (!_table.NoteWritten(set.Name, statements))
            throw _rule.Refuse(i, $"set '{d.SetName}' is updated from the packet path by rules that give its elements different statements");
        var op = d.Op switch { DynsetExpr.OpAdd => SetUpdateOp.Add, DynsetExpr.OpUpdate => SetUpdateOp.Update, _ => SetUpdateOp.Delete };
        ulong ms = d.Timeout is ulong own and > 0 ? own : set.Set.Timeout ?? 0;
        if (d.Timeout is > 0 && !TableContext.HasTimeouts(set))
            throw _rule.Refuse(i, $"dynset with a timeout on set '{d.SetName}' without `flags timeout`");
        if (ms > (ulong)TimeSpan.MaxValue.TotalMilliseconds) throw _rule.Refuse(i, $"dynset timeout {ms}ms is out of range");
        TimeSpan? timeout = op != SetUpdateOp.Delete && ms > 0 && TableContext.HasTimeouts(set) ? TimeSpan.FromMilliseconds(ms) : null;
        AddStateful(i, new SetUpdateStatement(op, name, key, timeout));
    }
}
