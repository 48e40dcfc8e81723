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
    IPAddress Destination)
{
    /// <summary>Where the packet shows up when delivered (set by the runner from the case and topology).</summary>
    public Observation Where { get; init; }

    /// <summary>
    /// What must appear on the receiving link, one key per frame (<see cref="PacketCrafter.FrameKey"/>):
    /// the IP addresses and everything behind the fixed IP header as they arrive (after NAT), or an ARP body.
    /// </summary>
    public IReadOnlyList<string> ArrivalKeys { get; init; } = [];
}
