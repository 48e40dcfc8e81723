using System.Buffers.Binary;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// Packet-written sets of the programs <see cref="InstallEarly"/> installs. A set taken over from the kernel's packet
/// path starts with the kernel's elements read before the install (<see cref="PacketPathSeed"/>); what the kernel's
/// packet path added after that read is merged in once the programs run (<see cref="CatchUpEarly"/>). A joined link's
/// replaced program has what it wrote carried into the early one around the early swap, as the commit's swap carries it.
/// </summary>
public sealed partial class Enforcer
{
    /// <summary>
    /// The staged steps <see cref="InstallEarly"/> installs: those loaded anew at attach points that take chains back from
    /// the kernel, new or joined, but not a joined one whose programs' packet-written copies (replaced or new) a step left
    /// to the commit holds too: carried early and again at the commit's swap, the second carry would overwrite what the
    /// early program wrote since (the commit's <see cref="SwapIn"/> carries copies once, for every program sharing them).
    /// </summary>
    List<Step> EarlySteps(Staged staged)
    {
        var steps = staged.Steps.Where(s => s.Loaded != null && _takenBack.Contains(s.Unit.Key) && (s is { Existing: null, Created: not null } || s.Existing?.Program != null)).ToList();
        for (var excluded = true; excluded;)
        {
            var later = staged.Steps.Where(s => s.Loaded != null && !steps.Contains(s)).SelectMany(CopiesOf).ToHashSet();
            excluded = steps.RemoveAll(s => s.Existing != null && CopiesOf(s).Any(later.Contains)) > 0;
        }
        return steps;
    }

    /// <summary>The packet-written set copies of a step's new program and of the one it replaces.</summary>
    static IEnumerable<SetCopies> CopiesOf(Step s) =>
        new[] { s.Loaded, s.Existing?.Program }.OfType<LoadedProgram>().SelectMany(p => p.Compiled.SetLayouts
            .Where(l => l.Value.Set.PacketWritten).Select(l => p.PacketWrittenCopies(ProgramCompiler.SetMapName(l.Key))).OfType<SetCopies>());

    /// <summary>The carry back from an early program to the one it replaced, whose link runs that again (null: none, or it failed).</summary>
    PacketPathCarry? CarryBack(LoadedProgram early, LoadedProgram replaced)
    {
        try
        {
            // the transaction's own element changes stay out of the replaced program's sets: they were never committed
            return PacketPathCarry.Before(early, replaced, _staged?.PacketPath ?? new Dictionary<string, SetChange>(), _staged?.Recreated ?? new HashSet<string>());
        }
        catch (Exception e) when (e is BpfException or CodegenException)
        {
            return null;
        }
    }

    /// <summary>
    /// Merges <paramref name="seeds"/>, the kernel's packet-written sets read again once the programs <see cref="InstallEarly"/>
    /// installed run, into their copies: an element the kernel's packet path added that the read before the install
    /// (the staged seeds) did not list is written where the copy lacks its key (BPF_NOEXIST: an element the early program
    /// made itself since stays as it made it), and a listed element's later expiry (`update @s` renewed it in the
    /// kernel) is taken. Nothing is taken out: an element listed before the install that the copy no longer holds was
    /// deleted or expired in BPF, and the kernel's copy did not see every packet BPF dropped. Where the early program runs
    /// first every packet the kernel's copy sees from the install on went through it, so the elements are exact; where
    /// it runs after, what the kernel's copy adds between this read and its commit is not carried. An element that
    /// cannot be written is reported in <paramref name="errors"/>. Returns how many elements it added.
    /// </summary>
    public int CatchUpEarly(IReadOnlyDictionary<string, IReadOnlyList<PacketPathSeed>> seeds, List<string> errors)
    {
        if (_staged is not { } staged || _early.Count == 0) return 0;
        var done = new HashSet<SetCopies>();
        var added = 0;
        foreach (var s in _early)
            foreach (var (set, elements) in seeds)
            {
                var next = s.Loaded!;
                if (!next.Compiled.SetLayouts.TryGetValue(set, out var layout) || !layout.Set.PacketWritten
                    || next.PacketWrittenCopies(ProgramCompiler.SetMapName(set)) is not { } copies || !done.Add(copies)) continue;
                var before = new HashSet<byte[]>(ByteArrayComparer.Instance);
                foreach (var e in staged.Seeds.GetValueOrDefault(set) ?? [])
                    if (e.Committed == PacketPathSeed.CommittedChange.None && layout.EntriesOf(e.Element) is [var (k, _)]) before.Add(k);
                foreach (var e in elements)
                    try
                    {
                        if (e.Committed == PacketPathSeed.CommittedChange.Deleted) continue;
                        (byte[] Key, byte[] Value)? entry = e.Committed == PacketPathSeed.CommittedChange.Renewed
                            ? layout.EntriesOf(e.Element) is [var (key, _)] ? e.RenewedEntry(layout, key) : null
                            : e.Entry(layout, out _);
                        if (entry is not var (k, v)) continue; // reported when the staged seeds were written
                        if (layout.HasTimeouts) Renew(next, set, k, BinaryPrimitives.ReadUInt64LittleEndian(v.AsSpan(SetLayout.ExpiresOffset)));
                        if (e.Committed == PacketPathSeed.CommittedChange.None && !before.Contains(k) && AddAbsent(next, set, k, v)) added++;
                    }
                    catch (Exception x) when (x is CodegenException or BpfException)
                    {
                        errors.Add($"set '{set}': the element {e.Element.Format(layout.Set.Key)} the kernel's packet path added is not carried to BPF: {x.Message}");
                    }
            }
        return added;
    }

    const int EEXIST = 17;

    /// <summary>
    /// Writes the entry to each copy of a packet-written set that lacks its key (the other copy first, as the packet path
    /// keeps it a subset); whether the copy packets read lacked it.
    /// </summary>
    static bool AddAbsent(LoadedProgram p, string set, byte[] key, byte[] value)
    {
        var added = false;
        for (var i = 0; i < 2; i++)
            try
            {
                p.SetMapCopy(set, (p.Generation + 1 + i) % 2)!.Update(key, value, BpfMap.NoExist);
                added = i == 1;
            }
            catch (BpfException e) when (e.Errno == EEXIST)
            {
                // the program made it itself since the install
            }
        return added;
    }

    /// <summary>Sets the expiry of the key in each copy holding it to <paramref name="expires"/> where that is later (0: never expires, kept).</summary>
    static void Renew(LoadedProgram p, string set, byte[] key, ulong expires)
    {
        if (expires == 0) return;
        for (var i = 0; i < 2; i++)
        {
            var copy = p.SetMapCopy(set, i)!;
            var value = new byte[copy.ValueSize];
            if (!copy.TryLookup(key, value)) continue;
            var now = BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(SetLayout.ExpiresOffset));
            if (now == 0 || now >= expires) continue;
            BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(SetLayout.ExpiresOffset), expires);
            try
            {
                copy.Update(key, value, BpfMap.Exist);
            }
            catch (BpfException e) when (e.Errno == 2)
            {
                // gone since the lookup (collected, or deleted by a packet): nothing to renew
            }
        }
    }
}
