// The only file that names the transaction engine's type: retarget it here when the engine moves.
using Nft.Engine;

namespace Bpfilter.Fuzz;

/// <summary>A fresh nf_tables engine as the fuzzer drives it: no backend, a frozen clock, a fixed requester.</summary>
public static class EngineUnderTest
{
    /// <summary>A new engine's Process(request, portId): the datagrams the kernel would queue for that port.</summary>
    public static Func<byte[], uint, IReadOnlyList<byte[]>> Create(bool refuseOutOfScope)
    {
        var engine = new NfTablesEndpoint(new NfTablesOptions
        {
            RefuseOutOfScope = refuseOutOfScope,
            Clock = () => 1_000_000, // element timeouts must not depend on when an input runs
            Requester = port => (port, "nft"), // no /proc reads: the same input always gives the same replies
        });
        return (request, port) => engine.Process(request, port);
    }
}
