using System.Buffers.Binary;
using System.Text;

namespace Bpfilter.Backend.Log;

/// <summary>
/// The fixed binary record a BPF program writes to the log ring buffer (BPF_MAP_TYPE_RINGBUF) for one
/// logged packet: everything nf_log_syslog reads from the skb, the hook state and the socket. All
/// integers little-endian (host order); packet bytes verbatim. Layout (<see cref="Size"/> bytes):
/// <code>
///  off size field
///    0   4  ConfigId        which log statement: index into the daemon's LogConfig table
///    4   1  Hook            NF_INET_PRE_ROUTING(0) .. POST_ROUTING(4); netdev ingress = 0
///    5   1  Family          NFPROTO_* of the logger: IPV4 2, IPV6 10, NETDEV 5, ARP 3, BRIDGE 7
///    6   2  Flags           LogEventFlags
///    8   4  Mark            skb->mark
///   12   4  NetworkLength   skb->len counted from the network header (what skb_header_pointer can reach)
///   16   2  Protocol        skb->protocol as a host-order EtherType (0x0800, 0x86dd, 0x0806, ...)
///   18   2  DevType         skb->dev->type (ARPHRD_ETHER 1, ARPHRD_LOOPBACK 772, ...)
///   20   2  HardHeaderLen   skb->dev->hard_header_len (MAC= prints this many bytes)
///   22   2  MacHeaderLen    skb_mac_header_len(skb): network header - MAC header
///   24   2  VlanProto       skb->vlan_proto, host order (valid with VlanPresent)
///   26   2  VlanTci         skb->vlan_tci (VID = low 12 bits)
///   28   2  PacketLength    bytes captured in Packet (min(NetworkLength, PacketCapacity))
///   30   2  MacLength       bytes captured in Mac (min(HardHeaderLen, MacCapacity))
///   32   4  Uid             socket file's fsuid in the initial user namespace (valid with UidValid)
///   36   4  Gid             socket file's fsgid
///   40  16  InName          state->in->name, NUL padded ("" when no input device)
///   56  16  OutName         state->out->name
///   72  24  Mac             bytes from the MAC header on
///   96 256  Packet          bytes from the network header on
/// </code>
/// 256 bytes cover an IPv4 header with 40 bytes of options and a TCP header with 40 bytes of
/// options, an ICMP error quoting such a packet, and IPv6 with ~150 bytes of extension headers.
/// </summary>
public readonly record struct LogEvent
{
    public const int Size = 352;
    public const int MacCapacity = 24, PacketCapacity = 256, NameSize = 16;

    public const int OffConfigId = 0, OffHook = 4, OffFamily = 5, OffFlags = 6, OffMark = 8, OffNetworkLength = 12,
        OffProtocol = 16, OffDevType = 18, OffHardHeaderLen = 20, OffMacHeaderLen = 22, OffVlanProto = 24,
        OffVlanTci = 26, OffPacketLength = 28, OffMacLength = 30, OffUid = 32, OffGid = 36, OffInName = 40,
        OffOutName = 56, OffMac = 72, OffPacket = 96;

    public uint ConfigId { get; init; }
    public byte Hook { get; init; }
    public byte Family { get; init; }
    public LogEventFlags Flags { get; init; }
    public uint Mark { get; init; }
    public uint NetworkLength { get; init; }
    public ushort Protocol { get; init; }
    public ushort DevType { get; init; }
    public ushort HardHeaderLen { get; init; }
    public ushort MacHeaderLen { get; init; }
    public ushort VlanProto { get; init; }
    public ushort VlanTci { get; init; }
    public uint Uid { get; init; }
    public uint Gid { get; init; }
    public string InName { get; init; }
    public string OutName { get; init; }
    public byte[] Mac { get; init; }
    public byte[] Packet { get; init; }

    public LogEvent()
    {
        InName = OutName = "";
        Mac = Packet = [];
    }

    public static LogEvent Parse(ReadOnlySpan<byte> r)
    {
        if (r.Length < Size) throw new ArgumentException($"a log event is {Size} bytes, got {r.Length}");
        var packetLength = BinaryPrimitives.ReadUInt16LittleEndian(r[OffPacketLength..]);
        var macLength = BinaryPrimitives.ReadUInt16LittleEndian(r[OffMacLength..]);
        if (packetLength > PacketCapacity || macLength > MacCapacity)
            throw new ArgumentException($"log event claims {packetLength} packet / {macLength} MAC bytes");
        return new LogEvent
        {
            ConfigId = BinaryPrimitives.ReadUInt32LittleEndian(r[OffConfigId..]),
            Hook = r[OffHook],
            Family = r[OffFamily],
            Flags = (LogEventFlags)BinaryPrimitives.ReadUInt16LittleEndian(r[OffFlags..]),
            Mark = BinaryPrimitives.ReadUInt32LittleEndian(r[OffMark..]),
            NetworkLength = BinaryPrimitives.ReadUInt32LittleEndian(r[OffNetworkLength..]),
            Protocol = BinaryPrimitives.ReadUInt16LittleEndian(r[OffProtocol..]),
            DevType = BinaryPrimitives.ReadUInt16LittleEndian(r[OffDevType..]),
            HardHeaderLen = BinaryPrimitives.ReadUInt16LittleEndian(r[OffHardHeaderLen..]),
            MacHeaderLen = BinaryPrimitives.ReadUInt16LittleEndian(r[OffMacHeaderLen..]),
            VlanProto = BinaryPrimitives.ReadUInt16LittleEndian(r[OffVlanProto..]),
            VlanTci = BinaryPrimitives.ReadUInt16LittleEndian(r[OffVlanTci..]),
            Uid = BinaryPrimitives.ReadUInt32LittleEndian(r[OffUid..]),
            Gid = BinaryPrimitives.ReadUInt32LittleEndian(r[OffGid..]),
            InName = Name(r.Slice(OffInName, NameSize)),
            OutName = Name(r.Slice(OffOutName, NameSize)),
            Mac = r.Slice(OffMac, macLength).ToArray(),
            Packet = r.Slice(OffPacket, packetLength).ToArray(),
        };
    }

    /// <summary>The record as the BPF program writes it (tests and tools build events with this).</summary>
    public byte[] ToBytes()
    {
        if (Packet.Length > PacketCapacity || Mac.Length > MacCapacity) throw new ArgumentException("capture exceeds the record");
        var b = new byte[Size];
        var w = b.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(w[OffConfigId..], ConfigId);
        w[OffHook] = Hook;
        w[OffFamily] = Family;
        BinaryPrimitives.WriteUInt16LittleEndian(w[OffFlags..], (ushort)Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(w[OffMark..], Mark);
        BinaryPrimitives.WriteUInt32LittleEndian(w[OffNetworkLength..], NetworkLength);
        BinaryPrimitives.WriteUInt16LittleEndian(w[OffProtocol..], Protocol);
        BinaryPrimitives.WriteUInt16LittleEndian(w[OffDevType..], DevType);
        BinaryPrimitives.WriteUInt16LittleEndian(w[OffHardHeaderLen..], HardHeaderLen);
        BinaryPrimitives.WriteUInt16LittleEndian(w[OffMacHeaderLen..], MacHeaderLen);
        BinaryPrimitives.WriteUInt16LittleEndian(w[OffVlanProto..], VlanProto);
        BinaryPrimitives.WriteUInt16LittleEndian(w[OffVlanTci..], VlanTci);
        BinaryPrimitives.WriteUInt16LittleEndian(w[OffPacketLength..], (ushort)Packet.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(w[OffMacLength..], (ushort)Mac.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(w[OffUid..], Uid);
        BinaryPrimitives.WriteUInt32LittleEndian(w[OffGid..], Gid);
        Encoding.ASCII.GetBytes(InName.AsSpan(0, Math.Min(InName.Length, NameSize - 1)), w.Slice(OffInName, NameSize));
        Encoding.ASCII.GetBytes(OutName.AsSpan(0, Math.Min(OutName.Length, NameSize - 1)), w.Slice(OffOutName, NameSize));
        Mac.CopyTo(w[OffMac..]);
        Packet.CopyTo(w[OffPacket..]);
        return b;
    }

    private static string Name(ReadOnlySpan<byte> b)
    {
        var end = b.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? b : b[..end]);
    }
}

/// <summary>Bits of <see cref="LogEvent.Flags"/>: what the hook and the skb had.</summary>
[Flags]
public enum LogEventFlags : ushort
{
    None = 0,
    /// <summary>state->in was set (the kernel prints the MAC header only then).</summary>
    HasIn = 1,
    HasOut = 2,
    /// <summary>skb_mac_header_was_set(skb).</summary>
    MacHeaderSet = 4,
    /// <summary>skb_vlan_tag_present(skb).</summary>
    VlanPresent = 8,
    /// <summary>skb->sk is a full socket of this namespace with a file: Uid/Gid are valid.</summary>
    UidValid = 16,
    /// <summary>
    /// skb->data was at the MAC header, so skb_network_offset was not 0 (netdev egress). nf_log then
    /// neither quotes the packet inside an ICMP error nor prints UID/MARK for IPv4.
    /// </summary>
    LinkLayerInData = 32,
}
