namespace Bpfilter.Backend.Ir;

/// <summary>
/// A byte quota, as nft_quota: each packet first adds its length to the bytes consumed, then passes
/// on while the total stays within Bytes (`until`: consumed &lt;= Bytes), or once it exceeds it
/// (`over`: consumed &gt; Bytes); the others break to the next rule. StateSlot names the quota's
/// consumed-bytes state, chosen by the front-end like a counter id, so that `used` can be read back
/// and reset; rules sharing a slot share the quota (named quotas). Used is what the quota starts
/// with when its slot is new (nft's `used N bytes`).
/// </summary>
public sealed record QuotaStatement(ulong Bytes, bool Over, ulong StateSlot) : Statement
{
    public ulong Used { get; init; }

    public override bool MayBreak => true;

    public override string ToString() => $"quota {(Over ? "over" : "until")} {Bytes} bytes{(Used != 0 ? $" used {Used} bytes" : "")} #{StateSlot}";
}
