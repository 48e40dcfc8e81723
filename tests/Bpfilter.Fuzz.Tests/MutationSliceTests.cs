using System.Diagnostics;
using Bpfilter.Fuzz;
using Xunit.Abstractions;

namespace Bpfilter.Fuzz.Tests;

/// <summary>
/// The bounded slice of fuzzing CI runs: a fixed number of deterministic mutations of the seeds and
/// kept crash inputs through each target (scripts/fuzz.sh runs the coverage-guided campaign). A
/// failure prints the input and writes it next to the test binaries, to be kept in fuzz/regressions/.
/// </summary>
public class MutationSliceTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("decoder", 500_000)]
    [InlineData("engine", 50_000)]
    public void SeededMutationsDoNotCrash(string target, int iterations)
    {
        var t = FuzzTargets.Named(target);
        var pool = FuzzInputs.Seeds.Where(s => s.Target == target).Select(s => s.Bytes)
            .Concat(FuzzInputs.Regressions().Where(r => r.Target == target).Select(r => File.ReadAllBytes(r.File)))
            .ToList();
        var mutator = new Mutator(seed: 0x5eed + target.Length);
        var rng = new Random(target.Length);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < iterations; i++)
        {
            var input = mutator.Mutate(pool[rng.Next(pool.Count)], pool);
            var problem = Replay.Run(t, input);
            if (problem == null) continue;
            var path = Path.Combine(AppContext.BaseDirectory, $"crash-{target}-{i}");
            File.WriteAllBytes(path, input);
            Assert.Fail($"mutation {i} crashes {target} (input saved to {path}; keep it in fuzz/regressions/{target}/):\n" +
                $"{Convert.ToHexString(input)}\n{problem}");
        }
        output.WriteLine($"{target}: {iterations} mutations in {sw.Elapsed.TotalSeconds:F1} s");
    }
}
