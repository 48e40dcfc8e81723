using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// `delete @s` on one CPU and `add @s` of the same key on another, in the same instant. The kernel's rhash set holds
/// one element or none afterwards (nft_rhash_delete and the insert are each atomic); the program's two copies of the
/// set must agree on it, else the next commit's generation switch makes the element appear or vanish. Deleting the
/// copy packets read and then the other, while the add writes the copy packets read and then the other, left one
/// copy with the element whenever the delete fell between the add's two writes or the add between the two deletes.
/// </summary>
public class PacketElementDeleteRaceTests
{
    const int Elements = 1000, AddRepeat = 1000, DeleteRepeat = 200;

    private static byte[] Tcp4(string source, ushort dport) => PacketBuilder.Ether().Ipv4(source, "198.18.0.2").Tcp(40000, dport);

    private static Rule Write(SetUpdateOp op, ushort dport, Verdict verdict) =>
        new(ValueList.Of(Matcher.Eq(Fields.Tcp.Dport, U16(dport))), ValueList.Of<Statement>(new SetUpdateStatement(op, "s", Fields.Ip.Saddr, null)), verdict);

    /// <summary>Port 22 adds the source to @s and drops, port 23 deletes it and accepts; elements with a counter when <paramref name="counted"/>.</summary>
    private static LoadedProgram LoadAddDelete(string hook, bool counted) => Load(hook switch { "tc" => TcIn, "netfilter" => NfIn4, _ => Xdp }, Verdict.Accept,
        [Write(SetUpdateOp.Add, 22, Verdict.Drop), Write(SetUpdateOp.Delete, 23, Verdict.Accept)],
        sets: [new("s", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty)
        {
            PacketWritten = true, Size = 2 * Elements,
            PacketStatements = counted ? ValueList.Of<Statement>(new CounterStatement(0)) : ValueList<Statement>.Empty,
        }]);

    private static void RunRepeated(LoadedProgram p, byte[] packet, int repeat) =>
        p.TestRun(p.Compiled.ProgramType == BpfProgType.Netfilter ? packet[14..] : packet, repeat);

    private static byte[]? Raw(LoadedProgram p, int copy, byte[] key)
    {
        var map = p.SetMapCopy("s", copy)!;
        var value = new byte[map.ValueSize];
        return map.TryLookup(key, value) ? value : null;
    }

    /// <summary>
    /// Two threads meeting at a spinning rendezvous per key, one running the add's packet and one the delete's, each
    /// many times over in the kernel (BPF_PROG_TEST_RUN's repeat; the delete's runs end first, as a rule): every key
    /// ends in both copies, with equal values, or in neither. The windows are a map operation wide, narrower than two
    /// CPUs' syscalls ever line up on a test machine, so this passed before the fix too: the tests below put the
    /// program in the states the interleavings leave.
    /// </summary>
    [Theory]
    [InlineData("xdp", false), InlineData("xdp", true), InlineData("tc", false), InlineData("netfilter", true)]
    public void ADeleteAndAnAddOfTheSameKeyAtOnceLeaveBothCopiesAgreeing(string hook, bool counted)
    {
        using var p = LoadAddDelete(hook, counted);
        string Address(int i) => $"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}";
        var keys = Enumerable.Range(0, Elements).Select(i => V4(Address(i)).Bytes.ToArray()).ToArray();
        var adds = keys.Select((_, i) => Tcp4(Address(i), 22)).ToArray();
        var deletes = keys.Select((_, i) => Tcp4(Address(i), 23)).ToArray();
        var arrived = 0;
        var threads = new[] { adds, deletes }.Select((packets, t) => new Thread(() =>
        {
            for (var i = 0; i < Elements; i++)
            {
                Interlocked.Increment(ref arrived);
                var spin = new SpinWait();
                while (Volatile.Read(ref arrived) < 2 * (i + 1)) spin.SpinOnce(sleep1Threshold: -1);
                RunRepeated(p, packets[i], t == 0 ? AddRepeat : DeleteRepeat);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        var wrong = new List<string>();
        for (var i = 0; i < Elements; i++)
        {
            var (a, b) = (Raw(p, 0, keys[i]), Raw(p, 1, keys[i]));
            if ((a is null) != (b is null)) wrong.Add($"{Address(i)} only in copy {(a is null ? 1 : 0)} (the live one is {p.Generation})");
            else if (a is not null && !a.AsSpan().SequenceEqual(b)) wrong.Add($"{Address(i)}: the copies' values differ");
        }
        Assert.True(wrong.Count == 0, $"{wrong.Count} of {Elements} keys: {string.Join("; ", wrong.Take(5))}");
        // what is left is what the packets see: each surviving key is in the set, and a delete takes it from both
        foreach (var i in Enumerable.Range(0, Elements).Where(i => Raw(p, p.Generation, keys[i]) is not null).Take(20))
        {
            p.Run(deletes[i]);
            Assert.Null(Raw(p, 0, keys[i]));
            Assert.Null(Raw(p, 1, keys[i]));
        }
    }

    private static readonly byte[] Key = V4("198.18.0.5").Bytes.ToArray();

    /// <summary>An element as the packet path makes it: code 1 (with <paramref name="claimed"/>, a delete's claim), statement code <paramref name="statementCode"/>.</summary>
    private static byte[] Element(LoadedProgram p, uint statementCode = 0, bool claimed = false)
    {
        var v = new byte[p.SetMapCopy("s", 0)!.ValueSize];
        BitConverter.TryWriteBytes(v.AsSpan(0), 1u | (claimed ? 1u << 30 : 0));
        if (v.Length >= 8) BitConverter.TryWriteBytes(v.AsSpan(4), statementCode);
        return v;
    }

    /// <summary>
    /// The control plane's batch adding an element is on the standby copy when a packet's `delete @s` of its key runs:
    /// the copy packets read lacks it, so the kernel's delete (before the commit) finds nothing, and after the commit
    /// the element is there. The delete took the standby copy's entry too, so after the switch (the batch then written
    /// to the copy packets left) the copy packets read lacked the element and the other held it.
    /// </summary>
    [Theory]
    [InlineData("xdp"), InlineData("tc"), InlineData("netfilter")]
    public void ADeleteLeavesTheElementABatchHasOnlyWrittenToTheStandbyCopy(string hook)
    {
        using var p = LoadAddDelete(hook, counted: false);
        var element = Element(p);
        p.SetMapCopy("s", p.Standby)!.Update(Key, element);
        RunRepeated(p, Tcp4("198.18.0.5", 23), 1);
        Assert.NotNull(Raw(p, p.Standby, Key));
        p.SwitchGeneration();
        p.SetMapCopy("s", p.Standby)!.Update(Key, element);
        Assert.Equal(element, Raw(p, 0, Key));
        Assert.Equal(element, Raw(p, 1, Key));
    }

    /// <summary>
    /// An element a packet made in the copy packets read (statement code 3: not yet in the other copy) that a delete on
    /// another CPU claimed, and took from the other copy, before this packet writes it there: the packet's write is
    /// taken back, so once the delete takes it from the copy packets read neither copy holds it. Before, the packet's
    /// write came after the delete's and the other copy alone kept the element.
    /// </summary>
    [Fact]
    public void AnElementWrittenToTheOtherCopyAfterADeleteTookItFromThereIsTakenBack()
    {
        using var p = LoadAddDelete("xdp", counted: true);
        p.SetMapCopy("s", p.Generation)!.Update(Key, Element(p, statementCode: 3, claimed: true));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5", 22)));
        Assert.Null(Raw(p, p.Standby, Key));
        // the delete's last step
        p.SetMapCopy("s", p.Generation)!.Delete(Key);
        Assert.Null(Raw(p, 0, Key));
        Assert.Null(Raw(p, 1, Key));
    }

    /// <summary>
    /// Of two deletes of one element, the one whose claim comes second leaves it to the first (which has taken it from
    /// the other copy and takes it from the copy packets read next); an add meanwhile finds it, as the kernel's finds
    /// the element before it is deleted, and writes nothing.
    /// </summary>
    [Fact]
    public void AnElementAnotherDeleteClaimedIsLeftToIt()
    {
        using var p = LoadAddDelete("xdp", counted: false);
        var claimed = Element(p, claimed: true);
        p.SetMapCopy("s", p.Generation)!.Update(Key, claimed);
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5", 23)));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5", 22)));
        Assert.Equal(claimed, Raw(p, p.Generation, Key));
        Assert.Null(Raw(p, p.Standby, Key));
    }

    /// <summary>
    /// Packets deleting elements a batch adds, from the instant the batch switches the generation: the batch then waits
    /// for the old copy's readers and writes the copy packets left first key to last, while the packets delete the
    /// last keys last-first, so deletes land before that write reaches their key, as the kernel's deletes after the
    /// commit, and each such element must end in neither copy. The batch's write of the copy packets left used to put
    /// them back there (the copy packets read lacked them, the next switch showed them again). Five batches, each
    /// checked: a deleting thread the scheduler holds back past a whole batch only makes that batch's deletes come after
    /// it, which passes either way; after the fix every order passes.
    /// </summary>
    [Fact]
    public void DeletesBetweenABatchsSwitchAndItsSecondWriteLeaveNeitherCopyWithTheElements()
    {
        const int Added = 1000, Deleted = 200;
        using var p = LoadAddDelete("xdp", counted: false);
        string Address(int i) => $"10.9.{i >> 8 & 255}.{i & 255}";
        var keys = Enumerable.Range(0, Added).Select(i => V4(Address(i)).Bytes.ToArray()).ToArray();
        var element = Element(p);
        var left = new List<string>();
        for (var batch = 0; batch < 5; batch++)
        {
            var before = p.Generation;
            var deleter = new Thread(() =>
            {
                while (p.Generation == before) Thread.MemoryBarrier();
                for (var i = Added - 1; i >= Added - Deleted; i--) RunRepeated(p, Tcp4(Address(i), 23), 1);
            });
            deleter.Start();
            var outcome = SetBatch.Apply([new SetBatch.Change(p, "set:s", [], keys.Select(k => (k, element)).ToList())]);
            deleter.Join();
            Assert.Empty(outcome.Errors);
            left.AddRange(Enumerable.Range(Added - Deleted, Deleted).Where(i => Raw(p, 0, keys[i]) is not null || Raw(p, 1, keys[i]) is not null)
                .Select(i => $"batch {batch}: {Address(i)} in copy {(Raw(p, 0, keys[i]) is null ? "" : "0")}{(Raw(p, 1, keys[i]) is null ? "" : "1")}"));
            // the elements no packet deleted are in both copies
            Assert.All(keys.Take(Added - Deleted), k => Assert.True(Raw(p, 0, k) is not null && Raw(p, 1, k) is not null));
        }
        Assert.True(left.Count == 0, $"{left.Count} of {5 * Deleted} deleted elements left (the live copy is {p.Generation}): {string.Join("; ", left.Take(5))}");
    }
}
