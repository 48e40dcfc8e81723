using System.Buffers.Binary;
using Nft.Netlink;

namespace Nft.Engine.Tests;

/// <summary>
/// What nft 1.0.6 sent to the kernel, as captured in tests/Nft.Bytecode.Tests/Transcripts: where the
/// files are, which messages are GET requests, and how a run of batch operations is sent again
/// (the transcripts keep only nf_tables messages, so BATCH_BEGIN/END are put back around the run).
/// </summary>
internal static class Transcript
{
    public static string Dir()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Bpfilter.Nft.sln"))) dir = dir.Parent;
        return Path.Combine(dir?.FullName ?? ".", "tests", "Nft.Bytecode.Tests", "Transcripts");
    }

    public static bool IsGet(byte[] m) =>
        Nfnl.Msg(BinaryPrimitives.ReadUInt16LittleEndian(m.AsSpan(4))) is 1 or 4 or 7 or 10 or 13 or 16 or 19 or 21 or 23 or 25 or 33;

    /// <summary>Each run of batch operations in <paramref name="file"/>, framed as a batch (GET requests skipped), with the index of the message after it.</summary>
    public static IEnumerable<(byte[] Batch, int Next)> Batches(string file)
    {
        var lines = File.ReadLines(Path.Combine(Dir(), file)).Where(l => l.Length > 2 && l[0] == '>')
            .Select(l => Convert.FromHexString(l[2..])).ToList();
        int i = 0;
        while (i < lines.Count)
        {
            var send = new List<byte[]> { lines[i] };
            bool batch = !IsGet(lines[i]);
            i++;
            while (batch && i < lines.Count && !IsGet(lines[i])) send.Add(lines[i++]);
            if (batch) yield return (BatchAt(BinaryPrimitives.ReadUInt32LittleEndian(send[0].AsSpan(8)) - 1, send), i);
        }
    }

    public static byte[] BatchAt(uint seq, List<byte[]> msgs)
    {
        var w = new NetlinkWriter();
        var b = w.BeginMessage(Nfnl.MsgBatchBegin, NlmFlags.Request, seq, 0);
        w.WriteRaw([0, 0, 0, Nfnl.SubsysNftables]);
        w.EndMessage(b);
        foreach (var m in msgs) w.WriteRaw(m);
        var e = w.BeginMessage(Nfnl.MsgBatchEnd, NlmFlags.Request, seq + (uint)msgs.Count + 1, 0);
        w.WriteRaw([0, 0, 0, Nfnl.SubsysNftables]);
        w.EndMessage(e);
        return w.ToArray();
    }
}
