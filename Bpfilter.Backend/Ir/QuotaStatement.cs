namespace Bpfilter.Backend.Ir;

/// <summary>
/// A byte quota, as nft_quota: packets pass on while the bytes consumed stay within Bytes (`until`),
/// or once they exceed it (`over`); the others break to the next rule. StateSlot names the quota's
/// consumed-bytes state, chosen by the front-end like a counter id, so that `used` can be read back
/// and reset; rules sharing a slot share the quota (named quotas).
/// </summary>
public sealed record QuotaStatement(ulong Bytes, bool Over, ulong StateSlot) : Statement
{
    public override bool MayBreak => true;

    public override string ToString() => $"quota {(Over ? "over" : "until")} {Bytes} bytes #{StateSlot}";
}
