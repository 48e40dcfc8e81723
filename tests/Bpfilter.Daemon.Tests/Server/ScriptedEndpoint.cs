using Bpfilter.Daemon.Server;

namespace Bpfilter.Daemon.Tests.Server;

/// <summary>
/// Test endpoint answering with whatever its function computes, and noticing if the server ever
/// let two requests into it at the same time.
/// </summary>
internal sealed class ScriptedEndpoint(Func<byte[], uint, IReadOnlyList<byte[]>> answer) : INetlinkEndpoint
{
    int _inside;
    public int Calls;
    public bool Overlapped;
    public readonly System.Collections.Concurrent.ConcurrentQueue<(byte[] Request, uint PortId)> Seen = new();

    public IReadOnlyList<byte[]> Process(ReadOnlySpan<byte> request, uint portId)
    {
        if (Interlocked.Increment(ref _inside) != 1) Overlapped = true;
        try
        {
            Interlocked.Increment(ref Calls);
            var copy = request.ToArray();
            Seen.Enqueue((copy, portId));
            return answer(copy, portId);
        }
        finally
        {
            Interlocked.Decrement(ref _inside);
        }
    }
}
