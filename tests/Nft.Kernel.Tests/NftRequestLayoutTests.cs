using System.Globalization;
using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Netlink;

namespace Nft.Kernel.Tests;

/// <summary>
/// Records decoded from what nft 1.0.6 itself sends (its attribute order, NLA_F_NESTED nests,
/// strings as it writes them) keep that layout through the placement, and the kernel accepts them.
/// nft's bytes are captured with strace while it loads the ruleset into a scratch namespace.
/// </summary>
public class NftRequestLayoutTests
{
    /// <summary>The bytes of every sendmsg nft made (strace -e write=all hex dumps).</summary>
    static List<byte[]> SentBuffers(string straceLog)
    {
        var buffers = new List<byte[]>();
        List<byte>? current = null;
        foreach (var line in File.ReadLines(straceLog))
        {
            if (line.StartsWith(" | ", StringComparison.Ordinal) && line.Length >= 59)
            {
                if (current is null) continue;
                foreach (var tok in line.Substring(10, 49).Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    current.Add(byte.Parse(tok, NumberStyles.HexNumber));
                continue;
            }
            if (line.StartsWith(" * ", StringComparison.Ordinal)) continue; // "* N bytes in buffer i"
            if (current is { Count: > 0 }) buffers.Add(current.ToArray());
            current = line.Contains("sendmsg(") ? [] : null;
        }
        if (current is { Count: > 0 }) buffers.Add(current.ToArray());
        return buffers;
    }

    /// <summary>
    /// Builds the tables from nft's NEW* requests as the emulation would hold them: rules get
    /// handles in order, anonymous sets ("__set%d" + batch id) get names, references follow.
    /// </summary>
    static IReadOnlyList<SourceTable> FromRequests(IEnumerable<byte[]> buffers)
    {
        var tables = new List<Table>();
        var chains = new List<Chain>();
        var rules = new List<Rule>();
        var sets = new List<Set>();
        var elements = new Dictionary<(byte, string, string), List<SetElement>>();
        var objects = new List<NftObject>();
        var anonNames = new Dictionary<uint, string>();
        ulong handle = 100;
        foreach (var buf in buffers)
        {
            var r = new NetlinkMessageReader(buf);
            while (r.TryRead(out var m))
            {
                if (!m.IsNfTables) continue;
                switch (NftMessage.Decode(m))
                {
                    case Table t when (NftMsgType)Nfnl.Msg(m.Header.Type) == NftMsgType.NewTable: tables.Add(t); break;
                    case Chain c: chains.Add(c); break;
                    case Set s:
                        if (s.Name!.Contains('%'))
                        {
                            anonNames[s.Id!.Value] = $"__set{anonNames.Count}";
                            s = s with { Name = anonNames[s.Id!.Value] };
                        }
                        sets.Add(s);
                        break;
                    case SetElementList l:
                        string set = l.SetId is { } sid && anonNames.TryGetValue(sid, out var an) ? an : l.Set!;
                        var key = (l.Family, l.Table!, set);
                        if (!elements.TryGetValue(key, out var list)) elements[key] = list = [];
                        list.AddRange(l.Elements ?? []);
                        break;
                    case NftObject o: objects.Add(o); break;
                    case Rule ru:
                        rules.Add(ru with
                        {
                            Handle = handle++,
                            Expressions = ru.Expressions!.Select(e => e is LookupExpr { SetId: { } id } lk && anonNames.TryGetValue(id, out var n)
                                ? lk with { Set = n } : e).ToList(),
                        });
                        break;
                }
            }
        }
        return tables.Select(t => new SourceTable(t,
            chains.Where(c => c.Family == t.Family && c.Table == t.Name)
                .Select(c => new SourceChain(c, rules.Where(x => x.Family == t.Family && x.Table == t.Name && x.Chain == c.Name).ToList())).ToList(),
            sets.Where(s => s.Family == t.Family && s.Table == t.Name)
                .Select(s => new SourceSet(s, elements.GetValueOrDefault((t.Family, t.Name!, s.Name!)) ?? [])).ToList(),
            objects.Where(o => o.Family == t.Family && o.Table == t.Name).ToList())).ToList();
    }

    [Fact]
    public void RecordsDecodedFromNftRequestsArePlacedAsNftSentThem()
    {
        using var emulation = new TestNetns("emu");
        using var kernel = new TestNetns("krn");
        var dir = Directory.CreateTempSubdirectory("nk-strace");
        try
        {
            var file = Path.Combine(dir.FullName, "ruleset.nft");
            var log = Path.Combine(dir.FullName, "nft.strace");
            File.WriteAllText(file, Rulesets.Realistic);
            emulation.Exec("strace", "-f", "-e", "trace=sendmsg", "-e", "write=all", "-o", log, "nft", "-f", file);
            var desired = FromRequests(SentBuffers(log));
            Assert.Equal(4, desired.Count);
            // nft's layout is kept: its nests carry NLA_F_NESTED, which the kernel never writes
            var hook = desired.SelectMany(t => t.Chains).First(c => c.Chain.Hook != null).Chain.Hook!;
            Assert.NotNull(hook.Layout);
            var chainLayout = desired.SelectMany(t => t.Chains).First(c => c.Chain.Hook != null).Chain.Layout!;
            Assert.Contains(chainLayout.Entries, e => (e.RawType & NlaFlags.Nested) != 0);

            using var socket = kernel.Socket();
            var placement = new KernelPlacement(socket);
            placement.Prepare(desired);
            placement.Commit();
            Assert.Equal(emulation.ListRuleset(), kernel.ListRuleset());

            // and the message placed for a rule is nft's own bytes for it, handle and ids aside
            var rule = desired.Single(t => t.Table.Name == "filter").Chains.Single(c => c.Chain.Name == "input").Rules[0];
            var prepared = placement.Prepare([.. desired.Select(t => t.Table.Name == "filter"
                ? t with { Chains = t.Chains.Select(c => c.Chain.Name == "tail" ? c with { Rules = [.. c.Rules, rule with { Handle = 999 }] } : c).ToList() }
                : t)]);
            placement.Abort();
            var sent = (Rule)prepared.Batch.Messages.Single(m => m.Type == NftMsgType.NewRule).Record;
            Assert.Equal(Bytes(rule with { Handle = null, Id = null, Chain = "tail" }), Bytes(sent with { Id = null, Position = null })); // ours: batch id, after the last rule
        }
        finally { dir.Delete(recursive: true); }
    }

    static byte[] Bytes(Rule r)
    {
        var w = new NetlinkWriter();
        r.Encode(w);
        return w.ToArray();
    }
}
