using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;
using Nft.Bytecode.Data;
using Nft.Lifter;
using NftSetElement = Nft.Bytecode.Objects.SetElement;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// Reads back the elements of a set a BPF program writes from the packet path (nft_dynset), as nf_tables
/// dumps them: the nft key (the lift's <see cref="SetEncoder.RegisterKey"/>), the time left until expiry in
/// milliseconds as nf_jiffies64_to_msecs(expiration - jiffies64) computes it, and the element's own timeout.
/// Every program holding such a set references one pair of copies (Backend SetCopies), so any one of them lists every element.
/// </summary>
internal static class PacketWrittenSets
{
    /// <summary>The live elements, or null when no running program writes the set.</summary>
    public static IReadOnlyList<NftSetElement>? Read(IEnumerable<LoadedProgram> programs, SetEncoder encoder)
    {
        foreach (var p in programs)
        {
            if (p.LiveElements(encoder.IrName) is not { } live) continue;
            var tick = (ulong)(KernelClock.TickMs ?? 1);
            var now = live.Any(e => e.Expires != null) ? KernelClock.Jiffies64() : 0;
            var elements = new List<NftSetElement>(live.Count);
            foreach (var e in live)
            {
                var key = encoder.RegisterKey(e.Key)
                    ?? throw new InvalidOperationException($"set {encoder.IrName}: map key {Convert.ToHexString(e.Key)} has no nft key");
                ulong? left = null;
                if (e.Expires is ulong x)
                {
                    // expired since the map was read: the kernel's walk would skip it too
                    if ((long)(x - now) <= 0) continue;
                    left = (x - now) * tick;
                }
                elements.Add(new NftSetElement { Key = new ValueData(key), Timeout = e.Timeout * tick, Expiration = left });
            }
            return elements;
        }
        return null;
    }
}
