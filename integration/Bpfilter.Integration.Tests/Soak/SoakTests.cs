using Bpfilter.Soak;
using Xunit.Abstractions;

namespace Bpfilter.Integration.Tests.Soak;

/// <summary>
/// A bounded run of the soak command (scripts/soak.sh, bench/Bpfilter.Soak) so that it keeps working:
/// 40 seconds of random transactions, traffic rounds and restarts with a fixed seed; every check must hold.
/// </summary>
public sealed class SoakTests(ITestOutputHelper output)
{
    [Fact]
    public void FortySecondsOfTransactionsUnderTrafficAgreeWithKernelAndModel()
    {
        if (RepoPaths.MissingReason() is { Length: > 0 } missing) Assert.Fail(missing);
        RepoPaths.BuildInterposer();
        var log = new StringWriter();
        var result = new SoakRun(new SoakOptions(TimeSpan.FromSeconds(40), Seed: 20261203), log).Run();
        output.WriteLine(log.ToString());
        output.WriteLine(result.SummaryLine);
        Assert.True(result.Failure == null, $"{result.SummaryLine}\n{log}");
        Assert.True(result.Transactions >= 10, $"only {result.Transactions} transactions in 40 s");
        Assert.True(result.Packets > 0 && result.Flooded > 0, result.SummaryLine);
    }
}
