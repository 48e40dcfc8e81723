using Bpfilter.Fuzz;

namespace Bpfilter.Fuzz.Tests;

/// <summary>Every crash input the fuzzer ever found (fuzz/regressions/TARGET/) passes, through both targets.</summary>
public class RegressionTests
{
    public static TheoryData<string, string> Inputs()
    {
        var d = new TheoryData<string, string>();
        foreach (var (target, file) in FuzzInputs.Regressions())
            foreach (var t in FuzzTargets.All)
                d.Add(t.Name, Path.Combine(target, Path.GetFileName(file)));
        return d;
    }

    [Fact]
    public void RegressionsAreKept() => Assert.NotEmpty(FuzzInputs.Regressions());

    [Theory]
    [MemberData(nameof(Inputs))]
    public void KeptCrashInputPasses(string target, string input)
    {
        var bytes = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "regressions", input));
        Assert.Null(Replay.Run(FuzzTargets.Named(target), bytes));
    }
}
