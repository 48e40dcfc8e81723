using Bpfilter.Backend.Ir;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter;

internal sealed partial class RuleLifter
{
    /// <summary>
    /// ct loads of the keys <see cref="CtNames.Read"/> knows: read by netfilter programs from the packet's conntrack
    /// entry. Anything else of ct (other keys, ct set) is refused naming the key, and so is ct in chains that run
    /// at a device (netdev tables, inet ingress): no netfilter program there.
    /// </summary>
    void Ct(CtExpr c, int i)
    {
        var name = CtNames.Of(c.Key, c.Direction);
        if (c.IsSet || c.DReg is not { } dreg)
            throw _rule.Refuse(i, $"expression 'ct' setting ct {name} is not supported by bpfilter-nft");
        if (CtNames.Read(c.Key, c.Direction, _table.Family) is not { } read)
            throw _rule.Refuse(i, $"expression 'ct {name}' is not supported by bpfilter-nft ({CtNames.Supported})");
        if (read.Field.Key == CtReadKey.Label && Bpfilter.Backend.Libbpf.CtLabelLayout.Unreadable is { } why)
            throw _rule.Refuse(i, $"expression 'ct label' is not supported by bpfilter-nft on this kernel: {why}");
        // jiffies_to_msecs needs whole milliseconds per jiffy: elsewhere the chain runs in the kernel
        if (read.Field.Key == CtReadKey.Expiration && Bpfilter.Backend.Libbpf.KernelHz.TickMs is null)
            throw _rule.Refuse(i, $"expression 'ct expiration' is not supported by bpfilter-nft on this kernel: its HZ " +
                $"({Bpfilter.Backend.Libbpf.KernelHz.Hz?.ToString() ?? "unknown"}) does not divide 1000");
        if (_ctx.LinkLayer)
            throw _rule.Refuse(i, $"expression 'ct {name}' is not supported in chains that run at a device (netdev, inet ingress): " +
                "bpfilter-nft reads conntrack only in netfilter-hook programs");
        _table.NoteCt(_rule, i);
        _regs.Write(dreg, new RegValue(new CtSource(c.Key, c.Direction, read.Field), read.Len, i), i);
    }
}
