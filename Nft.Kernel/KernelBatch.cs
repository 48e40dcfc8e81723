using Nft.Bytecode;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Kernel;

/// <summary>
/// One nf_tables message of a batch: type, family, flags, the typed record, what it does (for errors),
/// and the caller's handle of the rule it belongs to, if any (a rule, or an anonymous set sent for one).
/// </summary>
public sealed record KernelBatchMessage(NftMsgType Type, byte Family, NlmFlags Flags, object Record, string Description, ulong? RuleHandle = null);

/// <summary>
/// The messages of one nf_tables transaction, in order. Sent between NFNL_MSG_BATCH_BEGIN and
/// NFNL_MSG_BATCH_END (or without the end, to have the kernel validate and abort it), every message
/// with NLM_F_ACK so each error comes back with its errno, extack text and attribute offset.
/// </summary>
public sealed class KernelBatch
{
    readonly List<KernelBatchMessage> _messages = [];

    public IReadOnlyList<KernelBatchMessage> Messages => _messages;
    public int Count => _messages.Count;
    public bool IsEmpty => _messages.Count == 0;

    public KernelBatch Add(NftMsgType type, byte family, object record, string description, NlmFlags flags = NlmFlags.None, ulong? ruleHandle = null)
    {
        _messages.Add(new KernelBatchMessage(type, family, flags, record, description, ruleHandle));
        return this;
    }

    /// <summary>
    /// Writes the whole batch. Sequence numbers run from <paramref name="firstSeq"/> (BATCH_BEGIN)
    /// upwards; message i has <c>firstSeq + 1 + i</c>. <paramref name="echoDeletes"/>: every deletion of a table, chain,
    /// rule or object goes with NLM_F_ECHO, so the kernel sends us the notifications its commit builds
    /// (<see cref="IsEchoedDelete"/>).
    /// </summary>
    internal void Write(NetlinkWriter w, uint firstSeq, uint portId, bool withEnd, uint? generation, WireFormat format, bool echoDeletes = false)
    {
        var begin = w.BeginNfMessage(Nfnl.SubsysNone, (byte)Nfnl.MsgBatchBegin, NlmFlags.Request, firstSeq, portId, 0, Nfnl.SubsysNftables);
        if (generation is { } g) w.PutU32Be(Nfnl.BatchGenId, g);
        w.EndMessage(begin);
        uint seq = firstSeq + 1;
        foreach (var m in _messages)
            NftMessage.Write(w, m.Type, NlmFlags.Request | NlmFlags.Ack | m.Flags | (echoDeletes && Deletes(m.Type) ? NlmFlags.Echo : 0),
                seq++, portId, m.Family, 0, m.Record, format);
        if (withEnd)
        {
            var end = w.BeginNfMessage(Nfnl.SubsysNone, (byte)Nfnl.MsgBatchEnd, NlmFlags.Request, seq, portId, 0, Nfnl.SubsysNftables);
            w.EndMessage(end);
        }
    }

    /// <summary>The deletions whose echo names rules and objects deleted (a table's or a chain's deletes its rules, objects too).</summary>
    static bool Deletes(NftMsgType type) => type is NftMsgType.DelTable or NftMsgType.DelChain or NftMsgType.DelRule or NftMsgType.DelObj;

    /// <summary>
    /// The notifications of an echoed batch that carry final counts: nf_tables builds DELRULE and DELOBJ in its commit, after
    /// the new generation went live, DELRULE with the expressions' state dumped as it stands then (DELOBJ names the object
    /// only: 6.18 dumps no NFTA_OBJ_DATA there, `PlacementTests.DeletionsAreEchoedWithTheirFinalCountsUnlessTooManyToEcho`).
    /// </summary>
    internal static bool IsEchoedDelete(NftMsgType type) => type is NftMsgType.DelRule or NftMsgType.DelObj;
}

/// <summary>An error the kernel answered for one message of a batch (or for the batch framing: index -1).</summary>
/// <remarks>
/// <see cref="RuleHandle"/>: the caller's handle of the rule the message belongs to, to underline it in the user's error;
/// <see cref="Message"/>: the batch message refused (its family and record name the table and chain).
/// </remarks>
public sealed record KernelMessageError(int Index, string? Description, int Errno, string? ExtAck, int Offset, ulong? RuleHandle = null,
    KernelBatchMessage? Message = null)
{
    public override string ToString() =>
        $"{(Index >= 0 ? $"message {Index} ({Description})" : "batch")}: errno {Errno}" +
        $"{(ExtAck != null ? $" \"{ExtAck}\"" : "")}{(Offset >= 0 ? $" at offset {Offset}" : "")}";
}

/// <summary>What the kernel answered to a batch: one ACK or error per message.</summary>
public sealed record KernelBatchResult(int Acked, IReadOnlyList<KernelMessageError> Errors)
{
    public bool Succeeded => Errors.Count == 0;

    public void ThrowIfFailed(string what)
    {
        if (!Succeeded) throw new KernelNfTablesException(what, Errors);
    }
}

/// <summary>The kernel refused a request or a batch; <see cref="Errors"/> maps each errno to its message.</summary>
public sealed class KernelNfTablesException : Exception
{
    public KernelNfTablesException(string what, IReadOnlyList<KernelMessageError> errors)
        : base($"{what}: the kernel refused it: {string.Join("; ", errors)}")
    {
        Errors = errors;
    }

    public IReadOnlyList<KernelMessageError> Errors { get; }

    /// <summary>The errno of the first error.</summary>
    public int Errno => Errors.Count > 0 ? Errors[0].Errno : 0;
}
