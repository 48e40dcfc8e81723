using Nft.Engine;
using Nft.Netlink;

namespace Bpfilter.Daemon.Server;

/// <summary>
/// The connections subscribed to nfnetlink multicast groups (an `nft monitor` socket's memberships) and the
/// delivery of each commit's events to them. Delivery never waits: each subscriber has its own bounded
/// queue, and one that does not read loses events (ENOBUFS) without slowing anyone else.
/// </summary>
internal sealed class EventSubscribers
{
    readonly object _lock = new();
    readonly Dictionary<ReplyQueue, (uint PortId, uint Groups)> _members = new();
    volatile int _listeners;
    int _traceListeners;
    Action<bool>? _traceDemand;

    const uint NftablesBit = 1u << (NetlinkEvent.GroupNftables - 1);
    const uint TraceBit = 1u << (NetlinkEvent.GroupTrace - 1);

    /// <summary>nfnetlink_has_listeners(NFNLGRP_NFTABLES): whether a commit needs to build events at all.</summary>
    public bool HasListeners => _listeners > 0;

    /// <summary>
    /// Told (under the subscription lock, so in order) when NFNLGRP_NFTRACE gets its first member and loses its
    /// last: the trace relay is a member of the kernel's group only while someone here listens, as the kernel
    /// builds trace messages only for a group with listeners. Called at once with the current state.
    /// </summary>
    public void OnTraceDemand(Action<bool> demand)
    {
        lock (_lock)
        {
            _traceDemand = demand;
            demand(_traceListeners > 0);
        }
    }

    /// <summary>Sets a connection's memberships (as nl_groups bits); 0 drops it.</summary>
    public void Set(ReplyQueue queue, uint portId, uint groups)
    {
        lock (_lock)
        {
            if (groups == 0) _members.Remove(queue);
            else _members[queue] = (portId, groups);
            Recount();
        }
    }

    public void Remove(ReplyQueue queue)
    {
        lock (_lock)
        {
            _members.Remove(queue);
            Recount();
        }
    }

    void Recount()
    {
        _listeners = _members.Values.Count(m => (m.Groups & NftablesBit) != 0);
        int before = _traceListeners;
        _traceListeners = _members.Values.Count(m => (m.Groups & TraceBit) != 0);
        if ((before > 0) != (_traceListeners > 0)) _traceDemand?.Invoke(_traceListeners > 0);
    }

    /// <summary>Hands each event to every NFNLGRP_NFTABLES member but the port it excludes, in order.</summary>
    public void Publish(IReadOnlyList<NetlinkEvent> events)
    {
        lock (_lock)
        {
            foreach (var (queue, m) in _members)
            {
                if ((m.Groups & NftablesBit) == 0) continue;
                foreach (var e in events)
                    if (e.ExcludePort != m.PortId)
                        queue.AddEvent([e.Datagram]);
            }
        }
    }

    /// <summary>Hands each trace datagram to every NFNLGRP_NFTRACE member, in order.</summary>
    public void PublishTrace(IReadOnlyList<byte[]> datagrams)
    {
        lock (_lock)
            foreach (var (queue, m) in _members)
                if ((m.Groups & TraceBit) != 0)
                    foreach (var d in datagrams)
                        queue.AddEvent([d]);
    }

    /// <summary>Trace events were lost before they reached the daemon: every NFNLGRP_NFTRACE member's next receive fails with ENOBUFS.</summary>
    public void TraceLost()
    {
        lock (_lock)
            foreach (var (queue, m) in _members)
                if ((m.Groups & TraceBit) != 0)
                    queue.AddEvent([]);
    }
}
