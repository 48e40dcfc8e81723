namespace Bpfilter.Daemon.Tests.Enforcement;

public sealed partial class PersistenceTests
{
    /// <summary>
    /// 30 rules of three shapes in turn (no run of one shape to group) are one bit-vector classifier (Classification):
    /// adding or deleting one changes its tables, not the code (issue 12), so the attach point keeps its program (same
    /// id) and the commit is map updates through the tables' double-buffered copies; the new rule drops and counts. A
    /// restart adopts that program, its tables as they are, and the next added rule is map updates too.
    /// </summary>
    [Fact]
    public void ARuleAddedToOrDeletedFromAClassifiedRunKeepsTheProgramAcrossARestart() =>
        RunEditsKeepTheProgramAcrossARestart("c", 2100, 30, port => (port % 3) switch
        {
            0 => $"tcp dport {port} counter drop",
            1 => $"ip saddr 198.18.7.0/24 tcp dport {port} counter drop",
            _ => $"tcp sport 1024-65535 tcp dport {port} counter drop",
        }, explained => Assert.True(explained.Contains("clsword") || explained.Contains("cls:rules"), explained)); // the classifier's scan or its rule map
}
