using Bpfilter.Backend.Log;
using Bpfilter.Backend.Tests.Attach;

namespace Bpfilter.Backend.Tests.Log;

[Collection("nf_log")]
public class KernelLogWriterTests
{
    private static string Tag() => $"LW{Guid.NewGuid().ToString("N")[..6]}";

    [Fact]
    public void WritesTheLineAtItsLevelWithUserFacility()
    {
        using var policy = NfLogNamespacePolicy.ForCurrentNamespace();
        Assert.True(policy.IsInitialNamespace); // the test runner lives in the initial namespace
        using var kmsg = new KernelLog();
        var tag = Tag();
        Assert.True(new KernelLogWriter(policy).Write(6, $"{tag} IN=eth0 OUT= SRC=10.0.0.1 "));
        var r = kmsg.WaitFor(tag);
        Assert.Equal($"{tag} IN=eth0 OUT= SRC=10.0.0.1 ", r.Text); // trailing space kept, as in the kernel's lines
        Assert.Equal(6, r.Level);
        Assert.Equal(1, r.Facility); // LOG_USER: /dev/kmsg never lets user space write LOG_KERN
    }

    [Fact]
    public void BurstsBeyondTheDevkmsgRateLimitAreAllWritten()
    {
        using var policy = NfLogNamespacePolicy.ForCurrentNamespace();
        var writer = new KernelLogWriter(policy);
        using var kmsg = new KernelLog();
        var tag = Tag();
        for (var i = 0; i < 40; i++) writer.Write(7, $"{tag} line {i}");
        kmsg.WaitFor($"{tag} line 39");
        Assert.Equal(Enumerable.Range(0, 40).Select(i => $"{tag} line {i}"), kmsg.All(tag).Select(r => r.Text));
    }

    [Fact]
    public void ChildNamespaceFollowsNfLogAllNetnsLive()
    {
        using var veth = new VethPair();
        using var restore = new AllNetnsLogging(enabled: false);
        using var policy = VethPair.InNamespace(veth.Server, NfLogNamespacePolicy.ForCurrentNamespace);
        Assert.False(policy.IsInitialNamespace);
        var writer = new KernelLogWriter(policy);
        using var kmsg = new KernelLog();
        var tag = Tag();
        Assert.False(writer.Write(4, $"{tag} suppressed"));
        AllNetnsLogging.Set(true);
        Assert.True(policy.LoggingAllowed());
        Assert.True(writer.Write(4, $"{tag} written"));
        AllNetnsLogging.Set(false);
        Assert.False(writer.Write(4, $"{tag} suppressed again"));
        kmsg.WaitFor($"{tag} written");
        Assert.Equal([$"{tag} written"], kmsg.All(tag).Select(r => r.Text));
    }

    /// <summary>Program → ring buffer → service → /dev/kmsg: the line in the kernel log is the formatted event.</summary>
    [Fact]
    public void ServiceWritesTheLinesOfTestRunEvents()
    {
        using var programs = new LogPrograms();
        using var ring = Bpfilter.Backend.Log.LogEmitter.CreateRingBuffer("h5_logsvc");
        using var policy = NfLogNamespacePolicy.ForCurrentNamespace();
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        using var service = new NfLogService(ring, new KernelLogWriter(policy), errors.Enqueue);
        var tag = Tag();
        service.SetConfigs(new Dictionary<uint, LogConfig> { [0] = new($"{tag} ", 5, NfLogFlags.All) });
        using var xdp = XdpOn(ring);
        using var kmsg = new KernelLog();
        var net = new LogNet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], "10.213.7.1", "10.213.7.2");
        var c = LogCase.Ip[1];
        var frame = c.Frame(net);
        xdp.TestRun(frame);
        var r = kmsg.WaitFor(tag);
        var expected = c.ExpectedEvent(frame, LogEmitter.NfProtoNetdev, "lo7", trimmed: false);
        Assert.Equal(NfLogFormatter.Format(expected, new LogConfig($"{tag} ", 5, NfLogFlags.All)), r.Text);
        Assert.Equal(5, r.Level);
        Assert.Equal(1, service.Written);
        Assert.Empty(errors);
    }

    private static Bpfilter.Backend.Libbpf.BpfProgram XdpOn(Bpfilter.Backend.Libbpf.BpfMap ring)
    {
        var asm = new Bpfilter.Backend.Bpf.Assembler();
        asm.Emit(Bpfilter.Backend.Bpf.Asm.Mov64Reg(Bpfilter.Backend.Bpf.Register.R6, Bpfilter.Backend.Bpf.Register.R1));
        LogEmitter.EmitXdp(asm, Bpfilter.Backend.Bpf.Register.R6, "log", 0, "lo7");
        asm.Emit(Bpfilter.Backend.Bpf.Asm.Mov64Imm(Bpfilter.Backend.Bpf.Register.R0, 2), Bpfilter.Backend.Bpf.Asm.Exit());
        return Bpfilter.Backend.Libbpf.BpfProgram.Load(Bpfilter.Backend.Libbpf.BpfProgType.Xdp, "h5_logsvc",
            Bpfilter.Backend.Bpf.Linker.Link(asm.Build(), _ => ring.Fd.Value), Bpfilter.Backend.Libbpf.BpfAttachType.Xdp);
    }
}
