using Nft.Engine;

namespace Bpfilter.Daemon.Server;

/// <summary>Serves the socket from the nf_tables engine (Nft.Engine), which knows nothing of sockets.</summary>
public sealed class EngineEndpoint(NfTablesEndpoint engine) : INetlinkEndpoint
{
    public NfTablesEndpoint Engine => engine;

    public IReadOnlyList<byte[]> Process(ReadOnlySpan<byte> request, uint portId) => engine.Process(request, portId);

    public IReadOnlyList<byte[]> Process(ReadOnlySpan<byte> request, uint portId, List<NetlinkEvent>? events) =>
        engine.Process(request, portId, events);

    public void Release(uint portId) => engine.ReleasePort(portId);
}
