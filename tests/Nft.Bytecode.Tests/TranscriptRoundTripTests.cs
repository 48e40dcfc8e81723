using System.Text;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Bytecode.Wire;
using Nft.Netlink;
using Xunit.Abstractions;

namespace Nft.Bytecode.Tests;

/// <summary>
/// Every nf_tables message nft 1.0.6 sent to, or received from, the kernel in the transcript corpus
/// decodes into its record and re-encodes to exactly the same bytes.
/// </summary>
public class TranscriptRoundTripTests(ITestOutputHelper output)
{
    public static TheoryData<string> TranscriptFiles()
    {
        var d = new TheoryData<string>();
        foreach (var f in Transcript.Files()) d.Add(Path.GetFileName(f));
        return d;
    }

    /// <summary>Decodes and re-encodes one message; returns null when identical, else a description.</summary>
    public static string? RoundTrip(byte[] bytes, out object? record) => RoundTrip(bytes, WireFormat.AsDecoded, out record);

    public static string? RoundTrip(byte[] bytes, WireFormat format, out object? record)
    {
        record = null;
        var r = new NetlinkMessageReader(bytes);
        if (!r.TryRead(out var msg)) return "not a netlink message";
        var type = (NftMsgType)Nfnl.Msg(msg.Header.Type);
        if (NftMessage.RecordType(type) is null) return $"no record for {type}";
        record = NftMessage.Decode(msg);
        var g = msg.GenMsg;
        var w = new NetlinkWriter();
        var t = w.BeginNfMessage(Nfnl.SubsysNftables, (byte)type, msg.Header.Flags, msg.Header.Seq, msg.Header.Pid, g.Family, g.ResId, g.Version);
        NftMessage.EncodeAttributes(w, record, format);
        w.EndMessage(t);
        var again = w.WrittenSpan;
        if (again.SequenceEqual(bytes)) return null;
        int i = 0;
        while (i < Math.Min(again.Length, bytes.Length) && again[i] == bytes[i]) i++;
        return $"{type}: differs at byte {i} (lengths {bytes.Length} -> {again.Length})\n  in : {Convert.ToHexString(bytes)}\n  out: {Convert.ToHexString(again)}";
    }

    [Theory]
    [MemberData(nameof(TranscriptFiles))]
    public void EveryMessageRoundTripsByteForByte(string file)
    {
        var failures = new List<string>();
        int count = 0;
        foreach (var m in Transcript.Read(Path.Combine(Transcript.Directory, file)))
        {
            count++;
            string? err;
            try
            {
                err = RoundTrip(m.Bytes, out _);
            }
            catch (NetlinkException e)
            {
                err = $"NetlinkException errno {e.Errno} at {e.Offset}: {e.ExtAck}";
            }
            if (err != null) failures.Add($"{m.File}:{m.Line} ({(m.FromKernel ? "kernel" : "nft")}, {m.Command}): {err}");
        }
        Assert.True(count > 0, $"{file} holds no messages");
        Assert.True(failures.Count == 0, $"{failures.Count} of {count} messages failed:\n" + string.Join("\n", failures.Take(10)));
    }

    /// <summary>
    /// Records encoded in the kernel's own order and nest flags, ignoring what was decoded, reproduce
    /// every kernel message exactly: what the daemon builds for dumps and echoes looks like the kernel's.
    /// </summary>
    [Theory]
    [MemberData(nameof(TranscriptFiles))]
    public void KernelMessagesReencodeInKernelOrder(string file)
    {
        var failures = new List<string>();
        int count = 0;
        foreach (var m in Transcript.Read(Path.Combine(Transcript.Directory, file)).Where(m => m.FromKernel))
        {
            count++;
            var err = RoundTrip(m.Bytes, WireFormat.Kernel, out _);
            if (err != null) failures.Add($"{m.File}:{m.Line} ({m.Command}): {err}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {count} kernel messages differ in kernel order:\n" + string.Join("\n", failures.Take(10)));
    }

    [Fact]
    public void CorpusCoversEveryObjectAndReportsExpressionKinds()
    {
        var messages = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var kinds = new SortedDictionary<string, (int Typed, int Opaque)>(StringComparer.Ordinal);
        int total = 0;
        foreach (var m in Transcript.All())
        {
            Assert.Null(RoundTrip(m.Bytes, out var rec));
            total++;
            string key = $"{(NftMsgType)Nfnl.Msg(BitConverter.ToUInt16(m.Bytes, 4))} ({(m.FromKernel ? "kernel" : "nft")})";
            messages[key] = messages.GetValueOrDefault(key) + 1;
            foreach (var e in ExpressionsOf(rec!))
            {
                var (t, o) = kinds.GetValueOrDefault(e.Name);
                // an empty opaque state is a GETOBJ_RESET filter, not an expression left untyped
                if (e is OpaqueExpr { Data.Length: 0 }) continue;
                kinds[e.Name] = e is OpaqueExpr ? (t, o + 1) : (t + 1, o);
            }
        }
        var sb = new StringBuilder($"{total} messages round-trip\n");
        foreach (var (k, v) in messages) sb.Append($"  {k}: {v}\n");
        sb.Append("expressions (typed/opaque):\n");
        foreach (var (k, v) in kinds) sb.Append($"  {k}: {v.Typed}/{v.Opaque}\n");
        output.WriteLine(sb.ToString());
        foreach (var t in new[] { typeof(Table), typeof(Chain), typeof(Rule), typeof(Set), typeof(SetElementList), typeof(Gen), typeof(NftObject) })
            Assert.Contains(messages.Keys, k => NftMessage.RecordType(Enum.Parse<NftMsgType>(k.Split(' ')[0])) == t);
        Assert.DoesNotContain(kinds, k => k.Value.Opaque > 0 && ExpressionCodec.IsTyped(k.Key));
    }

    static IEnumerable<Expression> ExpressionsOf(object record)
    {
        IEnumerable<Expression> Walk(Expression? e)
        {
            if (e is null) yield break;
            yield return e;
            if (e is DynsetExpr d)
            {
                foreach (var x in Walk(d.Expr)) yield return x;
                foreach (var y in d.Expressions ?? []) foreach (var x in Walk(y)) yield return x;
            }
        }
        IEnumerable<Expression> list = record switch
        {
            Rule r => r.Expressions ?? [],
            Set s => (s.Expressions ?? []).Concat(s.Expr is null ? [] : [s.Expr]),
            SetElementList l => (l.Elements ?? []).SelectMany(e => (e.Expressions ?? []).Concat(e.Expr is null ? [] : [e.Expr])),
            NftObject o => o.Data is null ? [] : [o.Data],
            _ => [],
        };
        return list.SelectMany(Walk);
    }
}
