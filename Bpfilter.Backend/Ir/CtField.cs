namespace Bpfilter.Backend.Ir;

/// <summary>
/// A key of the packet's conntrack entry, as nf_tables' ct expression loads it (nft_ct_get_eval).
/// Only <see cref="CtReadKey.State"/> has a value for a packet without an entry (invalid or untracked);
/// for every other key such a packet fails the matcher whatever the operator (NFT_BREAK), also for `!=`.
/// Values are big-endian numbers of the field's width, like every IR value.
/// </summary>
public sealed record CtField(CtReadKey Key) : Field
{
    public override int Bits => Key switch
    {
        CtReadKey.Direction => 8,
        CtReadKey.Zone => 16,
        _ => 32,
    };

    public override ValueDisplay Display => Key switch
    {
        CtReadKey.Direction or CtReadKey.Zone => ValueDisplay.Decimal,
        _ => ValueDisplay.Hex,
    };

    public override string ToString() => "ct " + Key.ToString().ToLowerInvariant();
}

/// <summary>Conntrack keys a matcher reads (nft_ct get); <see cref="CtKey"/> are the ones a statement writes.</summary>
public enum CtReadKey
{
    /// <summary>
    /// One bit of nft's ct_state bitmask: invalid = 1, established = 2, related = 4, new = 8, untracked = 64.
    /// 32 bits.
    /// </summary>
    State,
    /// <summary>original = 0, reply = 1. 8 bits.</summary>
    Direction,
    /// <summary>The entry's IPS_* status bits (nf_conn.status). 32 bits.</summary>
    Status,
    /// <summary>nf_conn.mark. 32 bits.</summary>
    Mark,
    /// <summary>The entry's zone id (nf_conn.zone.id, whatever the zone's direction flags). 16 bits.</summary>
    Zone,
}

/// <summary>Conntrack field instances and the ct_state bits.</summary>
public static class CtFields
{
    public static readonly CtField State = new(CtReadKey.State);
    public static readonly CtField Direction = new(CtReadKey.Direction);
    public static readonly CtField Status = new(CtReadKey.Status);
    public static readonly CtField Mark = new(CtReadKey.Mark);
    public static readonly CtField Zone = new(CtReadKey.Zone);

    /// <summary>nft's ct_state bits (NF_CT_STATE_INVALID_BIT, NF_CT_STATE_BIT(ctinfo), NF_CT_STATE_UNTRACKED_BIT).</summary>
    public const uint Invalid = 1, Established = 2, Related = 4, New = 8, Untracked = 64;
}
