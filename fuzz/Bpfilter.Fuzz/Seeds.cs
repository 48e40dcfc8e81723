using Nft.Bytecode;
using Nft.Netlink;

namespace Bpfilter.Fuzz;

/// <summary>One starting input for a target, named after where it came from.</summary>
public sealed record Seed(string Target, string Name, byte[] Bytes);

/// <summary>
/// Seeds from the transcript corpus (tests/Nft.Bytecode.Tests/Transcripts: what nft 1.0.6 and the kernel
/// exchanged, captured by strace). The decoder gets every distinct message; the engine gets, per nft
/// command, the requests of that command preceded by those of the commands before it in its scenario
/// (so a rule's seed carries the table and chain it needs), batched as nft sends them.
/// </summary>
public static class Seeds
{
    /// <summary>An engine seed stops carrying its scenario's earlier commands past this size: AFL mutates small inputs best.</summary>
    const int EngineSeedPrefixLimit = 4096;

    public static IEnumerable<Seed> FromTranscripts(string directory)
    {
        var seen = new HashSet<string>();
        foreach (var file in Directory.GetFiles(directory, "*.txt").OrderBy(f => f, StringComparer.Ordinal))
        {
            string scenario = Path.GetFileNameWithoutExtension(file);
            var commands = ReadCommands(file);
            for (int c = 0; c < commands.Count; c++)
                foreach (var (line, bytes, _) in commands[c].Messages)
                    if (seen.Add(Convert.ToHexString(bytes)))
                        yield return new Seed("decoder", $"{scenario}-{line}", bytes);

            var prefix = new List<byte[]>();
            for (int c = 0; c < commands.Count; c++)
            {
                var own = Sends(commands[c].Messages.Where(m => !m.FromKernel).Select(m => m.Bytes));
                if (own.Count == 0) continue;
                if (prefix.Sum(p => p.Length + 2) > EngineSeedPrefixLimit) prefix.Clear();
                var requests = prefix.Concat(own).ToList();
                // Byte 0 selects the scope (0: refuse out of scope, as bpfilterd does; 1: full emulation).
                byte scope = commands[c].Text.Contains("nat", StringComparison.Ordinal) ? (byte)1 : (byte)0;
                yield return new Seed("engine", $"{scenario}-{c:D3}", [scope, .. RequestSequence.Join(requests)]);
                prefix.AddRange(own);
            }
        }
    }

    sealed record Command(string Text, List<(int Line, byte[] Bytes, bool FromKernel)> Messages);

    static List<Command> ReadCommands(string path)
    {
        var commands = new List<Command>();
        Command? current = null;
        int n = 0;
        foreach (var line in File.ReadLines(path))
        {
            n++;
            if (line.StartsWith("# nft ", StringComparison.Ordinal)) { commands.Add(current = new Command(line[2..], [])); continue; }
            if (current == null || line.Length < 3 || (line[0] != '>' && line[0] != '<')) continue;
            current.Messages.Add((n, Convert.FromHexString(line[2..]), line[0] == '<'));
        }
        return commands;
    }

    /// <summary>
    /// Groups nft's messages into the sends nft makes: each GET alone, consecutive changes in one
    /// batch between NFNL_MSG_BATCH_BEGIN and NFNL_MSG_BATCH_END.
    /// </summary>
    static List<byte[]> Sends(IEnumerable<byte[]> messages)
    {
        var sends = new List<byte[]>();
        var batch = new List<byte[]>();
        uint seq = 1;
        void Flush()
        {
            if (batch.Count == 0) return;
            var w = new NetlinkWriter();
            w.EndMessage(w.BeginNfMessage(Nfnl.SubsysNone, (byte)Nfnl.MsgBatchBegin, NlmFlags.Request, seq++, 0, 0, Nfnl.SubsysNftables));
            foreach (var m in batch) w.WriteRaw(m);
            w.EndMessage(w.BeginNfMessage(Nfnl.SubsysNone, (byte)Nfnl.MsgBatchEnd, NlmFlags.Request, seq++, 0, 0, Nfnl.SubsysNftables));
            sends.Add(w.ToArray());
            batch.Clear();
        }
        foreach (var m in messages)
        {
            var type = (NftMsgType)Nfnl.Msg(BitConverter.ToUInt16(m, 4));
            if (type.ToString().StartsWith("Get", StringComparison.Ordinal)) { Flush(); sends.Add(m); }
            else batch.Add(m);
        }
        Flush();
        return sends;
    }
}
