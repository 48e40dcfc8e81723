using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using Bpfilter.Backend.Tests.Attach;

namespace Bpfilter.Backend.Tests.Log;

/// <summary>
/// Hand-built frames for the log tests: every header field chosen by the test, IPv4 header checksums
/// correct (the kernel drops bad ones before any hook), transport checksums left 0 (nothing checks
/// them before the hooks the tests log at). <see cref="Inject"/> sends a frame as-is on a device
/// through an AF_PACKET socket, so the peer's hooks see exactly these bytes.
/// </summary>
public static partial class LogFrames
{
    public static byte[] Ether(byte[] dst, byte[] src, ushort type, byte[] payload) =>
        [.. dst, .. src, (byte)(type >> 8), (byte)type, .. payload];

    public static byte[] Ipv4(string src, string dst, byte proto, byte[] l4, byte tos = 0, ushort id = 4242,
        ushort frag = 0x4000, byte ttl = 64, byte[]? options = null)
    {
        var opt = options ?? [];
        var h = new byte[20 + opt.Length];
        h[0] = (byte)(0x40 | h.Length / 4);
        h[1] = tos;
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(2), (ushort)(h.Length + l4.Length));
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(6), frag);
        h[8] = ttl;
        h[9] = proto;
        IPAddress.Parse(src).GetAddressBytes().CopyTo(h, 12);
        IPAddress.Parse(dst).GetAddressBytes().CopyTo(h, 16);
        opt.CopyTo(h, 20);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(10), Checksum(h));
        return [.. h, .. l4];
    }

    public static byte[] Ipv6(string src, string dst, byte next, byte[] rest, byte tc = 0, uint flow = 0, byte hop = 64)
    {
        var h = new byte[40];
        BinaryPrimitives.WriteUInt32BigEndian(h, 6u << 28 | (uint)tc << 20 | flow & 0xfffff);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(4), (ushort)rest.Length);
        h[6] = next;
        h[7] = hop;
        IPAddress.Parse(src).GetAddressBytes().CopyTo(h, 8);
        IPAddress.Parse(dst).GetAddressBytes().CopyTo(h, 24);
        return [.. h, .. rest];
    }

    /// <summary>An IPv6 option header (hop-by-hop or destination options) of 8 bytes: PadN only.</summary>
    public static byte[] OptionHeader(byte next) => [next, 0, 0x01, 0x04, 0, 0, 0, 0];

    public static byte[] FragmentHeader(byte next, ushort offsetUnits, bool more, uint id) =>
        [next, 0, (byte)(offsetUnits >> 5), (byte)(offsetUnits << 3 | (more ? 1 : 0)), (byte)(id >> 24), (byte)(id >> 16), (byte)(id >> 8), (byte)id];

    public static byte[] Tcp(ushort sport, ushort dport, uint seq, uint ack, byte flags, ushort window = 64240, ushort urg = 0,
        byte[]? options = null, bool ae = false, byte reserved = 0, int payload = 0)
    {
        var opt = options ?? [];
        var h = new byte[20 + opt.Length + payload];
        BinaryPrimitives.WriteUInt16BigEndian(h, sport);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(2), dport);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(4), seq);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(8), ack);
        h[12] = (byte)((20 + opt.Length) / 4 << 4 | reserved << 1 | (ae ? 1 : 0));
        h[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(14), window);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(18), urg);
        opt.CopyTo(h, 20);
        return h;
    }

    public static byte[] Udp(ushort sport, ushort dport, int payload = 8)
    {
        var h = new byte[8 + payload];
        BinaryPrimitives.WriteUInt16BigEndian(h, sport);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(2), dport);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(4), (ushort)h.Length);
        return h;
    }

    /// <summary>ICMP or ICMPv6: type, code, the 4-byte rest of header, body.</summary>
    public static byte[] Icmp(byte type, byte code, uint rest, byte[]? body = null)
    {
        var h = new byte[8];
        h[0] = type;
        h[1] = code;
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(4), rest);
        return [.. h, .. body ?? []];
    }

    public static byte[] Arp(ushort op, byte[] senderMac, string senderIp, byte[] targetMac, string targetIp) =>
        [0, 1, 8, 0, 6, 4, (byte)(op >> 8), (byte)op, .. senderMac, .. IPAddress.Parse(senderIp).GetAddressBytes(),
            .. targetMac, .. IPAddress.Parse(targetIp).GetAddressBytes()];

    private static ushort Checksum(ReadOnlySpan<byte> h)
    {
        uint sum = 0;
        for (var i = 0; i < h.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(h[i..]);
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }

    public static byte[] MacOf(string ns, string device)
    {
        var psi = new ProcessStartInfo("ip", $"-n {ns} -br link show dev {device}") { RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        var fields = p.StandardOutput.ReadToEnd().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        p.WaitForExit();
        return fields[2].Split(':').Select(x => Convert.ToByte(x, 16)).ToArray();
    }

    /// <summary>Sends <paramref name="frame"/> verbatim out of <paramref name="device"/> in namespace <paramref name="ns"/>.</summary>
    public static unsafe void Inject(string ns, string device, byte[] frame)
    {
        var (fd, ifindex) = VethPair.InNamespace(ns, () =>
        {
            var s = Socket(17 /* AF_PACKET */, 3 /* SOCK_RAW */, 0);
            if (s < 0) throw new InvalidOperationException($"AF_PACKET socket: errno {Marshal.GetLastPInvokeError()}");
            return (s, (int)IfNameToIndex(device));
        });
        try
        {
            var addr = new byte[20];
            BinaryPrimitives.WriteUInt16LittleEndian(addr, 17);
            BinaryPrimitives.WriteInt32LittleEndian(addr.AsSpan(4), ifindex);
            addr[11] = 6;
            frame.AsSpan(0, 6).CopyTo(addr.AsSpan(12));
            fixed (byte* f = frame)
            fixed (byte* a = addr)
                if (SendTo(fd, f, frame.Length, 0, a, addr.Length) != frame.Length)
                    throw new InvalidOperationException($"sendto: errno {Marshal.GetLastPInvokeError()}");
        }
        finally { Close(fd); }
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "sendto", SetLastError = true)]
    private static unsafe partial nint SendTo(int fd, byte* buf, nint len, int flags, byte* addr, int addrLen);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "if_nametoindex", StringMarshalling = StringMarshalling.Utf8)]
    private static partial uint IfNameToIndex(string name);
}
