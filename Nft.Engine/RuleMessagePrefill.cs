using System.Runtime.CompilerServices;
using Nft.Engine.Model;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>
/// The state file's rule messages (<see cref="StateCodec"/>'s kept NEWRULE forms) encoded on another core while the backend
/// prepares a large batch's commit (lift, codegen, BPF load), so the save after it copies them instead of encoding each
/// there. The same encoding into the same per-rule cache: the saved bytes are those the save would have encoded, whichever
/// thread made them, and a rule the prefill has not reached is encoded by the save as before. Only rule records of the
/// snapshot being committed are read (immutable); each record's message form is set once, by one thread at a time: the
/// endpoint joins the prefill before it saves, and before it leaves the batch whatever its outcome.
/// </summary>
internal sealed class RuleMessagePrefill
{
    /// <summary>Batches of fewer messages encode what they add on the save's thread: a thread of its own would cost more.</summary>
    public const int MinMessages = 256;

    readonly Thread _thread;
    volatile bool _stopped;

    RuleMessagePrefill(RulesetSnapshot work, StrongBox<int> encoded)
    {
        // a thread of its own, not the pool's: the endpoint's caller may hold the pool's only free thread while it waits
        _thread = new Thread(() => Encode(work, encoded)) { IsBackground = true, Name = "state rule messages" };
        _thread.Start();
    }

    /// <summary>
    /// Starts encoding the rule messages of <paramref name="work"/> for a batch of <paramref name="messages"/> messages, counting
    /// those it encodes in <paramref name="encoded"/>; null when it is not worth a thread.
    /// </summary>
    public static RuleMessagePrefill? Start(RulesetSnapshot work, int messages, StrongBox<int> encoded) =>
        messages >= MinMessages && Environment.ProcessorCount > 1 ? new RuleMessagePrefill(work, encoded) : null;

    void Encode(RulesetSnapshot work, StrongBox<int> encoded)
    {
        var w = new NetlinkWriter(4096);
        var slab = new MessageSlab();
        foreach (var t in work.Tables)
            foreach (var c in t.Chains)
                foreach (var r in c.Rules)
                {
                    if (_stopped) return;
                    if (StateCodec.KeepRuleMessage(w, r, t.Family, slab)) Interlocked.Increment(ref encoded.Value);
                }
    }

    /// <summary>Waits until every rule message is kept (the commit saves next).</summary>
    public void Join() => _thread.Join();

    /// <summary>Stops the encoding where it is and waits for it (the batch is refused: nothing is saved).</summary>
    public void Stop()
    {
        _stopped = true;
        _thread.Join();
    }
}
