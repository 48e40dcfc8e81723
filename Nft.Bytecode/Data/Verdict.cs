using Nft.Bytecode.Wire;

namespace Nft.Bytecode.Data;

/// <summary>
/// A verdict (NFTA_DATA_VERDICT): netfilter codes (drop, accept, queue...) or nf_tables ones
/// (continue, break, jump, goto, return). Jump and goto name a chain, or refer by NFTA_VERDICT_CHAIN_ID
/// to one created in the same batch.
/// </summary>
public sealed record Verdict(int Code, string? Chain = null, uint? ChainId = null)
{
    public const int Drop = 0;
    public const int Accept = 1;
    public const int Stolen = 2;
    public const int Queue = 3;
    public const int Repeat = 4;
    public const int Stop = 5;
    public const int Continue = -1;
    public const int Break = -2;
    public const int Jump = -3;
    public const int Goto = -4;
    public const int Return = -5;

    /// <summary>Mask of the netfilter verdict in a code whose upper bits carry a queue number or errno.</summary>
    public const int NfVerdictMask = 0xff;

    /// <summary>Layout of the NFTA_DATA_VERDICT nest as decoded.</summary>
    public AttributeLayout? Layout { get; init; }

    public bool IsJumpOrGoto => Code is Jump or Goto;

    public static Verdict DropVerdict { get; } = new(Drop);
    public static Verdict AcceptVerdict { get; } = new(Accept);
    public static Verdict ReturnVerdict { get; } = new(Return);
    public static Verdict ContinueVerdict { get; } = new(Continue);
    public static Verdict JumpTo(string chain) => new(Jump, chain);
    public static Verdict GotoChain(string chain) => new(Goto, chain);

    public override string ToString() => Code switch
    {
        Drop => "drop",
        Accept => "accept",
        Queue => "queue",
        Continue => "continue",
        Break => "break",
        Return => "return",
        Jump => $"jump {Chain ?? $"id {ChainId}"}",
        Goto => $"goto {Chain ?? $"id {ChainId}"}",
        _ => $"verdict {Code}",
    };
}
