using Nft.Netlink;

namespace Bpfilter.Daemon.Server;

/// <summary>Creates the nf_tables endpoint the daemon serves.</summary>
internal static class EndpointFactory
{
    public static INetlinkEndpoint Create() => new NotBuiltEndpoint();

    /// <summary>Answers every message with EOPNOTSUPP until the nf_tables emulation is wired in.</summary>
    sealed class NotBuiltEndpoint : INetlinkEndpoint
    {
        public IReadOnlyList<byte[]> Process(ReadOnlySpan<byte> request, uint portId)
        {
            var replies = new List<byte[]>();
            var reader = new NetlinkMessageReader(request);
            while (reader.TryRead(out var m))
            {
                var w = new NetlinkWriter();
                NetlinkAck.Write(w, m.Bytes, m.Header, Errno.EOPNOTSUPP, portId, "bpfilterd: nf_tables emulation not built in");
                replies.Add(w.ToArray());
            }
            return replies;
        }
    }
}
