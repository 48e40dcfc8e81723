namespace Bpfilter.Integration.Tests.Packets;

/// <summary>The two shapes of the peer — fw — back topology a case can ask for (`topology routed|bridge`).</summary>
public enum TopologyKind
{
    /// <summary>fw routes between fw0 (198.18.1.1) and fw1 (198.18.2.1): the default.</summary>
    Routed,
    /// <summary>fw bridges fw0 and fw1 in br0, which holds fw's addresses: peer and back share one segment.</summary>
    Bridge,
}
