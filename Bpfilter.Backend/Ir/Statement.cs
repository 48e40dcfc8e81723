namespace Bpfilter.Backend.Ir;

/// <summary>
/// Something a rule does once its matchers matched, as nf_tables' statements. A rule runs its
/// statements in order and ends with its <see cref="Verdict"/> (itself a statement): order matters,
/// `counter limit rate 1/second accept` counts every packet, `limit rate 1/second counter accept`
/// only those the limit lets through.
/// </summary>
public abstract record Statement
{
    /// <summary>
    /// True when the statement can end the rule early for some packets (nf_tables' NFT_BREAK: the
    /// packet goes on to the next rule), as limit and quota do; false when every packet passes on.
    /// </summary>
    public virtual bool MayBreak => false;
}

/// <summary>
/// Counts the packet and its bytes in a counter slot chosen by the front-end (e.g. per nft rule
/// handle); statements sharing an id share the counter (named counters).
/// </summary>
public sealed record CounterStatement(ulong Id) : Statement
{
    public override string ToString() => $"counter #{Id}";
}

/// <summary>`notrack`: the packet gets no conntrack entry (only meaningful before conntrack runs).</summary>
public sealed record NotrackStatement : Statement
{
    public override string ToString() => "notrack";
}
