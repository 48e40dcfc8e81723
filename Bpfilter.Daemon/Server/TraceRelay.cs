using Nft.Kernel;

namespace Bpfilter.Daemon.Server;

/// <summary>
/// `nft monitor trace`: packets marked with `meta nftrace set 1` are traced by the kernel's nf_tables,
/// where every chain that can see such a packet runs (PlacementPlan places them there). The relay is a
/// member of the kernel's NFNLGRP_NFTRACE in the daemon's namespace while a client here is a member of
/// it, translates each NFT_MSG_TRACE to the caller's rule handles (<see cref="KernelTrace"/>) and hands it
/// to the subscribers; nft then looks the rule up by handle in the ruleset the daemon lists.
/// </summary>
internal sealed class TraceRelay : IDisposable
{
    readonly KernelTraceSocket _socket;
    readonly KernelPlacement _placement;
    readonly EventSubscribers _subscribers;
    readonly Action<string> _log;
    readonly CancellationTokenSource _stop = new();
    readonly Thread _reader;

    TraceRelay(KernelTraceSocket socket, KernelPlacement placement, EventSubscribers subscribers, Action<string> log)
    {
        _socket = socket;
        _placement = placement;
        _subscribers = subscribers;
        _log = log;
        _reader = new Thread(Read) { IsBackground = true, Name = "nftrace relay" };
    }

    /// <summary>Opens the trace socket in the daemon's namespace and starts relaying; null (logged) when it cannot.</summary>
    public static TraceRelay? Start(KernelPlacement placement, EventSubscribers subscribers, Action<string> log)
    {
        KernelTraceSocket socket;
        try
        {
            socket = KernelTraceSocket.Open();
        }
        catch (IOException e)
        {
            log($"nft monitor trace gets no events: cannot open the kernel's trace group: {e.Message}");
            return null;
        }
        var relay = new TraceRelay(socket, placement, subscribers, log);
        relay._reader.Start();
        subscribers.OnTraceDemand(relay.Demand);
        return relay;
    }

    void Demand(bool listeners)
    {
        try
        {
            _socket.Join(listeners);
        }
        catch (IOException e)
        {
            _log($"nft monitor trace: cannot {(listeners ? "join" : "leave")} the kernel's trace group: {e.Message}");
        }
    }

    void Read()
    {
        try
        {
            _socket.Run(Relay, _subscribers.TraceLost, _stop.Token);
        }
        catch (Exception e)
        {
            _log($"nft monitor trace: relay stopped: {e.Message}");
            _subscribers.TraceLost();
        }
    }

    void Relay(ReadOnlySpan<byte> datagram)
    {
        try
        {
            var events = KernelTrace.ForCaller(datagram, CallerRuleHandle);
            if (events.Count > 0) _subscribers.PublishTrace(events);
        }
        catch (Nft.Netlink.NetlinkException e)
        {
            _log($"nft monitor trace: a malformed trace message from the kernel was not relayed: {e.Message}");
        }
    }

    /// <summary>How long a trace of a rule not known yet waits for the commit that is adding it.</summary>
    static readonly TimeSpan CommitWait = TimeSpan.FromSeconds(5);

    /// <summary>The caller's handle; a rule the kernel traces while its commit is still being applied is asked about again after it.</summary>
    ulong? CallerRuleHandle(byte family, string table, ulong? kernelRuleHandle) =>
        _placement.CallerRuleHandle(family, table, kernelRuleHandle)
        ?? (_placement.WaitWhileCommitting(CommitWait) ? _placement.CallerRuleHandle(family, table, kernelRuleHandle) : null);

    public void Dispose()
    {
        _stop.Cancel();
        _reader.Join(TimeSpan.FromSeconds(2));
        _socket.Dispose();
        _stop.Dispose();
    }
}
