using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>Programs know where a packet meets them, so set batches switch the latest ones first (SetBatch).</summary>
public class PathOrderTests
{
    static (int, int) OrderOf(Hook hook)
    {
        var rs = Ruleset(hook, Verdict.Accept, []);
        return ProgramCompiler.Compile(rs, rs.BaseChains.Items).PathOrder;
    }

    [Fact]
    public void HooksAreOrderedAsAPacketMeetsThem()
    {
        Hook Nf(NfHookPoint p, int prio) => new NetfilterHook(NfFamily.Ipv4, p, prio);
        var path = new[]
        {
            OrderOf(Xdp), OrderOf(TcIn), OrderOf(Nf(NfHookPoint.Prerouting, -150)), OrderOf(Nf(NfHookPoint.Prerouting, 0)),
            OrderOf(Nf(NfHookPoint.Input, 0)), OrderOf(Nf(NfHookPoint.Output, 0)), OrderOf(Nf(NfHookPoint.Postrouting, 100)), OrderOf(TcOut),
        };
        Assert.Equal(path.OrderBy(o => o.Item1).ThenBy(o => o.Item2), path);
        Assert.Equal(path.Distinct().Count(), path.Length);
        Assert.Equal(OrderOf(Nf(NfHookPoint.Input, 0)), OrderOf(Nf(NfHookPoint.Forward, 0)));
    }
}
