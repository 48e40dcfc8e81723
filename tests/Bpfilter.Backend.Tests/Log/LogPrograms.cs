using System.Collections.Concurrent;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Log;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Tests.Log;

/// <summary>
/// A ring buffer, the consumer reading it, and programs that do nothing but a `log` statement
/// (config id 0) and accept: what the code generator will emit for `log` alone.
/// </summary>
public sealed class LogPrograms : IDisposable
{
    public BpfMap RingBuffer { get; } = LogEmitter.CreateRingBuffer("h5_log");
    public ConcurrentQueue<LogEvent> Events { get; } = new();
    public ConcurrentQueue<Exception> Errors { get; } = new();
    private readonly RingBufferConsumer _consumer;

    public LogPrograms()
    {
        _consumer = new RingBufferConsumer(RingBuffer, r => Events.Enqueue(LogEvent.Parse(r)), Errors.Enqueue);
    }

    public BpfProgram Xdp(string device)
    {
        var asm = new Assembler();
        asm.Emit(Asm.Mov64Reg(R6, R1));
        LogEmitter.EmitXdp(asm, R6, "log", 0, device);
        asm.Emit(Asm.Mov64Imm(R0, 2), Asm.Exit()); // XDP_PASS
        return BpfProgram.Load(BpfProgType.Xdp, "h5_logxdp", Linker.Link(asm.Build(), _ => RingBuffer.Fd.Value), BpfAttachType.Xdp);
    }

    public BpfProgram Tc(string device, bool ingress, uint configId)
    {
        var asm = new Assembler();
        asm.Emit(Asm.Mov64Reg(R6, R1));
        LogEmitter.EmitTc(asm, R6, "log", configId, device, ingress);
        asm.Emit(Asm.Mov64Imm(R0, -1), Asm.Exit()); // TCX_NEXT
        return BpfProgram.Load(BpfProgType.SchedCls, "h5_logtc", Linker.Link(asm.Build(), _ => RingBuffer.Fd.Value),
            ingress ? BpfAttachType.TcxIngress : BpfAttachType.TcxEgress);
    }

    public BpfProgram Netfilter(byte family, byte hook)
    {
        var asm = new Assembler();
        asm.Emit(Asm.Mov64Reg(R6, R1));
        LogEmitter.EmitNetfilter(asm, R6, "log", 0, family, hook, dynptrSlot: -16, dynptrReady: false);
        asm.Emit(Asm.Mov64Imm(R0, 1), Asm.Exit()); // NF_ACCEPT
        return BpfProgram.Load(BpfProgType.Netfilter, "h5_lognf", Linker.Link(asm.Build(), _ => RingBuffer.Fd.Value), BpfAttachType.Netfilter);
    }

    /// <summary>Waits for the event whose captured packet bytes are <paramref name="network"/>'s first bytes.</summary>
    public LogEvent WaitFor(ReadOnlySpan<byte> network, int timeoutMs = 3000)
    {
        var want = network[..Math.Min(network.Length, LogEvent.PacketCapacity)].ToArray();
        return WaitFor(e => e.Packet.AsSpan().SequenceEqual(want), $"a {network.Length}-byte packet", timeoutMs);
    }

    public LogEvent WaitFor(Func<LogEvent, bool> match, string what, int timeoutMs = 3000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (true)
        {
            foreach (var e in Events)
                if (match(e)) return e;
            if (!Errors.IsEmpty) throw new AggregateException(Errors);
            if (Environment.TickCount64 > deadline) throw new TimeoutException($"no log event for {what}; seen: {string.Join(", ", Events.Select(e => $"{e.Protocol:x4}/{e.NetworkLength}/{Convert.ToHexString(e.Packet.AsSpan(0, Math.Min(8, e.Packet.Length)))}"))}");
            Thread.Sleep(20);
        }
    }

    public void Dispose()
    {
        _consumer.Dispose();
        RingBuffer.Dispose();
    }
}
