using System.Net;

namespace Bpfilter.Integration.Tests.Packets;

/// <summary>
/// The bytes of one packet line: the frames (Ethernet frames from peer/back, IP packets from fw)
/// in sending order, the marker its payload carries, and per frame the bytes behind the fixed IP
/// header, which forwarding leaves untouched and so identify the frame on the far link.
/// </summary>
public sealed record CraftedPacket(
    PacketSpec Spec,
    IReadOnlyList<byte[]> Frames,
    IReadOnlyList<byte[]> Fingerprints,
    byte[] Marker,
    IPAddress Destination);
