using System.Diagnostics;
using System.Globalization;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;

namespace Bpfilter.Bench;

/// <summary>
/// ClassBench-style mixed ACLs (<see cref="ClassBenchRules"/>) in one XDP chain (policy accept): compile
/// time, instructions, classifier map memory, load time, and ns per packet (BPF_PROG_TEST_RUN) for
/// packets aimed at random rules, classified (the default pipeline) and, where the verifier takes it,
/// linear (no lowering). Each packet's verdict is checked against the linear program when there is one.
/// </summary>
internal static class MixedBench
{
    private const int Packets = 24;

    public static void Run(string[] args)
    {
        var runs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 5;
        var repeat = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 200_000;
        var counts = args.Length > 2 ? args[2..].Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToArray() : [1000, 10000, 100000];
        Console.WriteLine($"BPF_PROG_TEST_RUN, XDP, ClassBench-style mixed rules, {Packets} packets aimed at random rules, " +
            $"repeat={repeat}, median of {runs} runs per packet");
        Console.WriteLine($"{"program",-28} {"insns",7} {"compile ms",10} {"load ms",8} {"map MiB",8} {"mean ns/pkt",11} {"max",6}");
        foreach (var n in counts)
        {
            var gen = new ClassBenchRules(seed: n);
            var specs = gen.Rules(n);
            var chain = new BaseChain("bench/in", new XdpIngress("lo"), 0, Verdict.Accept, specs.Select(s => s.Rule).ToValueList());
            var rs = new Ruleset(ValueList.Of(chain), ValueList<Chain>.Empty, ValueList<Backend.Ir.Set>.Empty);
            var random = new Random(n);
            var packets = Enumerable.Range(0, Packets).Select(_ => gen.PacketFor(specs[random.Next(n)])).ToList();
            LoadedProgram? linear = null;
            if (n <= 1000) linear = Measure($"{n} mixed rules, linear", rs, LoweringPipeline.None, packets, runs, repeat, null);
            using (linear)
                Measure($"{n} mixed rules, classified", rs, null, packets, runs, repeat, linear)?.Dispose();
        }
    }

    private static LoadedProgram? Measure(string name, Ruleset rs, LoweringPipeline? lowering, List<byte[]> packets, int runs, int repeat,
        LoadedProgram? reference)
    {
        var clock = Stopwatch.StartNew();
        CompiledProgram compiled;
        LoadedProgram loaded;
        double compileMs;
        try
        {
            compiled = ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: lowering);
            compileMs = clock.Elapsed.TotalMilliseconds;
            clock.Restart();
            loaded = LoadedProgram.Load(compiled);
        }
        catch (Exception e)
        {
            Console.WriteLine($"{name,-28} fails: {e.Message.Split('\n')[0]}");
            return null;
        }
        var loadMs = clock.Elapsed.TotalMilliseconds;
        var bytes = compiled.Maps.Where(m => m.Name.StartsWith("cls:", StringComparison.Ordinal))
            .Sum(m => (long)m.MaxEntries * (m.KeySize + m.ValueSize));
        var perPacket = new List<uint>();
        var dropped = 0;
        foreach (var p in packets)
        {
            var verdict = loaded.Program.TestRun(p).ReturnValue;
            if (reference is not null && reference.Program.TestRun(p).ReturnValue != verdict)
                throw new InvalidOperationException($"{name}: verdict {verdict} differs from the linear program's");
            if (verdict == 1) dropped++;
            var samples = new List<uint>();
            for (var r = 0; r < runs; r++) samples.Add(loaded.Program.TestRun(p, repeat).DurationNs);
            samples.Sort();
            perPacket.Add(samples[samples.Count / 2]);
        }
        var insns = compiled.Instructions.Sum(i => i.Slots);
        Console.WriteLine($"{name,-28} {insns,7} {compileMs,10:F0} {loadMs,8:F0} {bytes / 1048576.0,8:F1} {perPacket.Average(x => (double)x),11:F0} {perPacket.Max(),6}" +
            $"   ({dropped}/{packets.Count} dropped)");
        return loaded;
    }
}
