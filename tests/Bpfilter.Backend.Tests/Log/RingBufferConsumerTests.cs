using System.Collections.Concurrent;
using System.Diagnostics;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Log;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Tests.Log;

public class RingBufferConsumerTests
{
    /// <summary>XDP program that submits one 16-byte record holding the first 8 packet bytes and a counter value.</summary>
    private static BpfProgram Writer(BpfMap ring)
    {
        var asm = new Assembler();
        var end = asm.NewLabel("end");
        asm.Emit(Asm.Mov64Reg(R6, R1), Asm.LoadMapFd(R1, "rb"), Asm.Mov64Imm(R2, 16), Asm.Mov64Imm(R3, 0),
            Asm.Call(HelperFunc.RingbufReserve), Asm.JeqImm(R0, 0, end), Asm.Mov64Reg(R7, R0),
            Asm.StDW(R7, 8, 0x5a5a),
            Asm.Mov64Reg(R1, R6), Asm.Mov64Imm(R2, 0), Asm.Mov64Reg(R3, R7), Asm.Mov64Imm(R4, 8), Asm.Call(HelperFunc.XdpLoadBytes),
            Asm.Mov64Reg(R1, R7), Asm.Mov64Imm(R2, 0), Asm.Call(HelperFunc.RingbufSubmit));
        asm.Label(end);
        asm.Emit(Asm.Mov64Imm(R0, 2), Asm.Exit());
        return BpfProgram.Load(BpfProgType.Xdp, "h5_rbw", Linker.Link(asm.Build(), _ => ring.Fd.Value), BpfAttachType.Xdp);
    }

    private static byte[] Packet(byte first) => [first, 1, 2, 3, 4, 5, 6, 7, .. new byte[56]];

    [Fact]
    public void DeliversRecordsInOrderAndSurvivesHandlerExceptions()
    {
        using var ring = LogEmitter.CreateRingBuffer("h5_rb1", 1 << 16);
        using var prog = Writer(ring);
        var got = new ConcurrentQueue<byte[]>();
        var errors = new ConcurrentQueue<Exception>();
        using (var consumer = new RingBufferConsumer(ring, r =>
               {
                   if (r[0] == 13) throw new InvalidOperationException("unlucky record");
                   got.Enqueue(r.ToArray());
               }, errors.Enqueue))
        {
            for (byte i = 10; i < 20; i++) prog.TestRun(Packet(i));
            var deadline = Environment.TickCount64 + 3000;
            while (consumer.Consumed < 10 && Environment.TickCount64 < deadline) Thread.Sleep(10);
            Assert.Equal(10, consumer.Consumed);
        }
        Assert.Equal(new byte[] { 10, 11, 12, 14, 15, 16, 17, 18, 19 }, got.Select(r => r[0]));
        Assert.All(got, r => Assert.Equal(16, r.Length));
        Assert.All(got, r => Assert.Equal(0x5a5aUL, BitConverter.ToUInt64(r, 8)));
        Assert.Equal("unlucky record", Assert.Single(errors).Message);
    }

    [Fact]
    public void DisposeIsPromptAndDeliversWhatWasSubmitted()
    {
        using var ring = LogEmitter.CreateRingBuffer("h5_rb2", 1 << 16);
        using var prog = Writer(ring);
        var got = new ConcurrentQueue<byte>();
        var consumer = new RingBufferConsumer(ring, r => got.Enqueue(r[0]));
        Thread.Sleep(50); // the thread is inside ring_buffer__poll now
        prog.TestRun(Packet(42));
        var sw = Stopwatch.StartNew();
        consumer.Dispose();
        Assert.True(sw.ElapsedMilliseconds < 5 * RingBufferConsumer.PollIntervalMs, $"dispose took {sw.ElapsedMilliseconds} ms");
        Assert.Equal(new byte[] { 42 }, got.ToArray());
        consumer.Dispose(); // idempotent
    }

    [Fact]
    public void RefusesMapsThatAreNotRingBuffers()
    {
        using var map = BpfMap.Create(BpfMapType.Array, "h5_notrb", 4, 4, 1);
        Assert.Throws<ArgumentException>(() => new RingBufferConsumer(map, _ => { }));
    }

    /// <summary>The code generator's netfilter prologue already made the skb dynptr: the emitter reuses it.</summary>
    [Fact]
    public void NetfilterEmitterReusesTheProloguesDynptr()
    {
        using var ring = LogEmitter.CreateRingBuffer("h5_rb3", 1 << 16);
        var asm = new Assembler();
        var ok = asm.NewLabel("ok");
        asm.Emit(Asm.Mov64Reg(R6, R1), Asm.LdxDW(R1, R6, 8), Asm.Mov64Imm(R2, 0), Asm.Mov64Reg(R3, R10), Asm.Add64Imm(R3, -216),
            Asm.CallKfunc(VmlinuxBtf.FuncId("bpf_dynptr_from_skb")), Asm.JeqImm(R0, 0, ok), Asm.Mov64Imm(R0, 1), Asm.Exit());
        asm.Label(ok);
        LogEmitter.EmitNetfilter(asm, R6, "log", 7, 10, 1, dynptrSlot: -216, dynptrReady: true);
        LogEmitter.EmitNetfilter(asm, R6, "log", 8, 10, 1, dynptrSlot: -216, dynptrReady: true); // two statements in one rule
        asm.Emit(Asm.Mov64Imm(R0, 1), Asm.Exit());
        using var prog = BpfProgram.Load(BpfProgType.Netfilter, "h5_lognf2", Linker.Link(asm.Build(), _ => ring.Fd.Value), BpfAttachType.Netfilter);
        Assert.NotNull(prog);
    }
}
