using Bpfilter.Backend.Log;

namespace Bpfilter.Backend.Tests.Log;

/// <summary>
/// Lines captured from this kernel (6.18, nft 1.0.6) for <see cref="LogCase.Ip"/> frames sent between
/// devices with fixed MAC addresses 02:00:00:00:00:01 -> 02:00:00:00:00:02 and addresses 10.213.7.1 ->
/// 10.213.7.2, logged at ip/ip6 prerouting on h5s0 with prefix "G&lt;case&gt; ". They pin the format without
/// a kernel; <see cref="LogDifferentialTests"/> checks every case live.
/// </summary>
public class NfLogFormatterGoldenTests
{
    private static readonly LogNet Fixed = new([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], "10.213.7.1", "10.213.7.2");

    [Theory]
        [InlineData(1, "G1 IN=h5s0 OUT= MACSRC=02:00:00:00:00:01 MACDST=02:00:00:00:00:02 MACPROTO=0800 SRC=10.213.7.1 DST=10.213.7.2 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=4242 DF PROTO=TCP SPT=40001 DPT=80 SEQ=287454020 ACK=0 WINDOW=64240 RES=0x00 SYN URGP=0 OPT (020405B40402080A0001E2400000000001030307) ")]
        [InlineData(2, "G2 IN=h5s0 OUT= MAC=02:00:00:00:00:02:02:00:00:00:00:01:08:00 SRC=10.213.7.1 DST=10.213.7.2 LEN=49 TOS=0x00 PREC=0x00 TTL=64 ID=4242 DF PROTO=TCP SPT=40002 DPT=443 SEQ=1 ACK=4000000000 WINDOW=1000 RES=0x00 AE CWR ECE URG ACK PSH RST SYN FIN URGP=77 OPT (01010100) ")]
        [InlineData(4, "G4 IN=h5s0 OUT= MAC=02:00:00:00:00:02:02:00:00:00:00:01:08:00 SRC=10.213.7.1 DST=10.213.7.2 LEN=44 TOS=0x00 PREC=0x00 TTL=64 ID=4242 DF OPT (0707040000000000) PROTO=UDP SPT=40004 DPT=53 LEN=16 ")]
        [InlineData(10, "G10 IN=h5s0 OUT= MACSRC=02:00:00:00:00:01 MACDST=02:00:00:00:00:02 MACPROTO=0800 SRC=10.213.7.1 DST=10.213.7.2 LEN=56 TOS=0x00 PREC=0x00 TTL=64 ID=4242 DF PROTO=ICMP TYPE=3 CODE=4 [SRC=10.213.7.2 DST=10.213.7.1 LEN=28 TOS=0x00 PREC=0x00 TTL=64 ID=98 DF PROTO=TCP INCOMPLETE [8 bytes] ] MTU=1400 ")]
        [InlineData(11, "G11 IN=h5s0 OUT= MAC=02:00:00:00:00:02:02:00:00:00:00:01:08:00 SRC=10.213.7.1 DST=10.213.7.2 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=4242 DF PROTO=ICMP TYPE=11 CODE=0 [SRC=10.213.7.2 DST=10.213.7.1 LEN=32 TOS=0x00 PREC=0x00 TTL=64 ID=4242 DF OPT (01010100) PROTO=UDP SPT=1 DPT=2 LEN=8 ] ")]
        [InlineData(24, "G24 IN=h5s0 OUT= MACSRC=02:00:00:00:00:01 MACDST=02:00:00:00:00:02 MACPROTO=86dd SRC=fd00:5eed:0000:0000:0000:0000:0000:0001 DST=fd00:5eed:0000:0000:0000:0000:0000:0002 LEN=56 TC=184 HOPLIMIT=64 FLOWLBL=74565 PROTO=UDP SPT=40020 DPT=53 LEN=16 ")]
        [InlineData(28, "G28 IN=h5s0 OUT= MAC=02:00:00:00:00:02:02:00:00:00:00:01:86:dd SRC=fd00:5eed:0000:0000:0000:0000:0000:0001 DST=fd00:5eed:0000:0000:0000:0000:0000:0002 LEN=108 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=ICMPv6 TYPE=2 CODE=0 [SRC=fd00:5eed:0000:0000:0000:0000:0000:0002 DST=fd00:5eed:0000:0000:0000:0000:0000:0001 LEN=60 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=TCP SPT=1 DPT=2 WINDOW=64240 RES=0x00 ACK URGP=0 ] MTU=1280 ")]
        [InlineData(31, "G31 IN=h5s0 OUT= MAC=02:00:00:00:00:02:02:00:00:00:00:01:86:dd SRC=fd00:5eed:0000:0000:0000:0000:0000:0001 DST=fd00:5eed:0000:0000:0000:0000:0000:0002 LEN=72 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=UDP SPT=40024 DPT=9 LEN=16 ")]
        [InlineData(33, "G33 IN=h5s0 OUT= MAC=02:00:00:00:00:02:02:00:00:00:00:01:86:dd SRC=fd00:5eed:0000:0000:0000:0000:0000:0001 DST=fd00:5eed:0000:0000:0000:0000:0000:0002 LEN=64 TC=0 HOPLIMIT=64 FLOWLBL=0 OPT ( FRAG:24 ID:00000005 ) OPT ( )")]
    public void FormatsCapturedKernelLines(int index, string kernel)
    {
        var c = LogCase.Ip[index];
        var frame = c.Frame(Fixed);
        var ev = c.ExpectedEvent(frame, (byte)(c.EtherType == 0x86dd ? 10 : 2), "h5s0", trimmed: true);
        Assert.Equal(kernel, NfLogFormatter.Format(ev, new LogConfig($"G{index} ", c.Config.Level, c.Config.Flags)));
    }

    [Fact]
    public void EventRoundTripsThroughItsBinaryLayout()
    {
        var c = LogCase.Ip[1];
        var ev = c.ExpectedEvent(c.Frame(Fixed), 2, "h5s0", trimmed: true) with
        {
            ConfigId = 0x01020304, Hook = 1, Mark = 0xdeadbeef, Uid = 1000, Gid = 100, OutName = "eth1",
            VlanProto = 0x8100, VlanTci = 0x2005, Flags = LogEventFlags.HasIn | LogEventFlags.HasOut | LogEventFlags.UidValid,
        };
        var bytes = ev.ToBytes();
        Assert.Equal(LogEvent.Size, bytes.Length);
        Assert.Equal([0x04, 0x03, 0x02, 0x01], bytes[..4]);
        Assert.Equal((byte)'h', bytes[LogEvent.OffInName]);
        var back = LogEvent.Parse(bytes);
        Assert.Equal(ev.Packet, back.Packet);
        Assert.Equal(ev.Mac, back.Mac);
        Assert.Equal(ev with { Packet = back.Packet, Mac = back.Mac }, back);
    }

    [Fact]
    public void PacketBeyondTheCaptureIsSaidNotInvented()
    {
        // An IPv6 packet whose extension headers run past the 256 captured bytes.
        var options = Enumerable.Range(0, 30).SelectMany(i => LogFrames.OptionHeader(i == 29 ? (byte)17 : (byte)60)).ToArray();
        var frame = LogFrames.Ether(Fixed.ServerMac, Fixed.ClientMac, 0x86dd,
            LogFrames.Ipv6(LogNet.Client6, LogNet.Server6, 0, [.. options, .. LogFrames.Udp(1, 2)]));
        var c = new LogCase("long", 0x86dd, new LogConfig(""), _ => []);
        var ev = c.ExpectedEvent(frame, 10, "h5s0", trimmed: true);
        Assert.Equal(LogEvent.PacketCapacity, ev.Packet.Length);
        var line = NfLogFormatter.Format(ev, new LogConfig("P "));
        Assert.EndsWith("[bpfilter: packet beyond the 256 captured bytes]", line);
        Assert.DoesNotContain("PROTO=", line);
        Assert.DoesNotContain("TRUNCATED", line);
        Assert.StartsWith("P IN=h5s0 OUT= MAC=", line);
    }

    [Fact]
    public void ConfigRefusesWhatTheKernelRefuses()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LogConfig("x", 8));
        Assert.Throws<ArgumentException>(() => new LogConfig(new string('a', 128)));
        Assert.Equal(4, new LogConfig("x").Level);
    }
}
