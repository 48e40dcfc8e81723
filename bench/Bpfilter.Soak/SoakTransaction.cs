namespace Bpfilter.Soak;

/// <summary>
/// One `nft -f` batch: its text, what it does in words, and the ruleset after it, or null when it
/// must fail (its last command is one the kernel refuses: the whole batch must change nothing).
/// </summary>
public sealed record SoakTransaction(string Script, string Summary, SoakRuleset? After)
{
    public bool MustFail => After == null;
}
