namespace Nft.Engine;

/// <summary>
/// Where a batch's time went, for the daemon log of slow batches: applying its messages (decode and the
/// transaction), the commit-time validation, the backend's prepare (lift, placement, compile, load) and
/// commit, saving the state, and building the notifications and echoes.
/// </summary>
public sealed record BatchPhases(int Messages, TimeSpan Apply, TimeSpan Validate, TimeSpan Prepare, TimeSpan BackendCommit,
    TimeSpan Save, TimeSpan Notify)
{
    public override string ToString() =>
        $"{Messages} message(s): apply {Ms(Apply)}, validate {Ms(Validate)}, backend prepare {Ms(Prepare)}, " +
        $"backend commit {Ms(BackendCommit)}, state save {Ms(Save)}, notifications {Ms(Notify)}";

    static string Ms(TimeSpan t) => $"{t.TotalMilliseconds:F1} ms";
}
