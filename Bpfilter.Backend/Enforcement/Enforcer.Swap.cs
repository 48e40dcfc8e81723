using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Loader;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// How <see cref="Commit"/> swaps the programs it loaded anew in. Programs that share a packet-written set's copies (an
/// inet chain's ipv4 and ipv6 programs, readers at other hooks) replace them together when the set needs new copies:
/// the old copies are carried into the new ones once (<see cref="PacketPathCarry.Before"/>, for every program before
/// any is swapped in), then every program is swapped in, then what the old programs wrote since is carried
/// (<see cref="PacketPathCarry.After"/>, once no old program is left writing the old copies), then the old programs go.
/// Carrying per program between swaps would rewrite the new copies from the old ones after a new program had
/// already written them: the packets it counted in between were lost.
/// </summary>
public sealed partial class Enforcer
{
    /// <summary>For tests: runs in <see cref="Commit"/> right after a program loaded anew is swapped in at an attach point, before the next one is.</summary>
    internal Action<AttachUnit>? Installed { get; set; }

    /// <param name="Carry">What its program carries (null: nothing, or carried by an earlier swap of the same copies).</param>
    sealed record Swap(Step Step, Attachment At, PacketPathCarry? Carry);

    /// <summary>
    /// Writes the seeds of each set <paramref name="next"/> writes from the packet path to its copies, once per pair of copies
    /// (programs sharing them seed them once, before any is installed); an element that has no entry is reported.
    /// </summary>
    static void Seed(LoadedProgram next, IReadOnlyDictionary<string, IReadOnlyList<PacketPathSeed>> seeds, ISet<SetCopies> seeded, List<string> errors)
    {
        foreach (var (set, elements) in seeds)
        {
            if (!next.Compiled.SetLayouts.TryGetValue(set, out var layout) || !layout.Set.PacketWritten
                || next.PacketWrittenCopies(ProgramCompiler.SetMapName(set)) is not { } copies || !seeded.Add(copies)) continue;
            foreach (var e in elements)
                try
                {
                    if (e.Committed != PacketPathSeed.CommittedChange.None)
                    {
                        if (layout.EntriesOf(e.Element) is not [var (key, _)])
                            errors.Add($"set '{set}': the committed element {e.Element.Format(layout.Set.Key)} has not one map entry");
                        else if (e.Committed == PacketPathSeed.CommittedChange.Deleted) next.DeletePacketPath(set, key);
                        else if (e.RenewedEntry(layout, key) is var (k, v)) next.WritePacketPath(set, k, v);
                        else errors.Add($"set '{set}': the committed element {e.Element.Format(layout.Set.Key)} the kernel's packet path renewed is not in the map");
                    }
                    else if (e.Entry(layout, out var why) is var (key, value)) next.WritePacketPath(set, key, value);
                    else errors.Add($"set '{set}': the element {e.Element.Format(layout.Set.Key)} the kernel's packet path added is not carried to BPF: {why}");
                }
                catch (Exception x) when (x is CodegenException or Libbpf.BpfException)
                {
                    errors.Add($"set '{set}': the element {e.Element.Format(layout.Set.Key)} the kernel's packet path added is not carried to BPF: {x.Message}");
                }
        }
    }

    /// <summary>Installs the programs of <paramref name="steps"/> loaded anew (the others are done by the caller); each failure is added to <paramref name="errors"/>.</summary>
    void SwapIn(IEnumerable<Step> steps, IReadOnlyDictionary<string, SetChange> changes, IReadOnlySet<string> recreated,
        IReadOnlyDictionary<string, IReadOnlyList<PacketPathSeed>> seeds, HashSet<SetCopies> seeded, List<string> errors)
    {
        void Failed(Step s, Exception e)
        {
            errors.Add($"commit at {s.Unit.Key} failed, the previous program keeps running there: {e.Message}");
            if (s.Existing == null) s.Created?.Dispose();
            else if (s.Loaded != null && !ReferenceEquals(s.Existing.Program, s.Loaded)) s.Loaded.Dispose();
        }
        // the pairs of copies (old, new) already carried: the second program of a share group finds its pair there
        var carried = new HashSet<(SetCopies, SetCopies)>();
        var swaps = new List<Swap>();
        foreach (var s in steps)
            try
            {
                (s.Existing ?? s.Created!).Unit = s.Unit;
                Seed(s.Loaded!, seeds, seeded, errors);
                var carry = s.Existing?.Program is { } replaced ? PacketPathCarry.Before(replaced, s.Loaded!, changes, recreated, carried) : null;
                swaps.Add(new Swap(s, s.Existing ?? s.Created!, carry));
            }
            catch (Exception e)
            {
                Failed(s, e);
            }
        var installed = new List<(Swap Swap, LoadedProgram? Old)>();
        foreach (var w in swaps)
            try
            {
                var old = w.At.Install(w.Step.Loaded!);
                Installed?.Invoke(w.Step.Unit);
                w.At.Source = w.Step.Source;
                _live[w.At.Key] = w.At;
                installed.Add((w, old));
            }
            catch (Exception e)
            {
                Failed(w.Step, e);
            }
        foreach (var (w, _) in installed)
            try
            {
                w.Carry?.After();
            }
            catch (Exception e)
            {
                errors.Add($"carrying the packet path's elements at {w.Step.Unit.Key} failed, the new program runs without what the old one wrote last: {e.Message}");
            }
        foreach (var (_, old) in installed)
        {
            if (old == null) continue;
            _ledger.Fold(old);
            old.Dispose();
        }
        // once every old program is gone (their copies with them)
        foreach (var (w, _) in installed) w.Carry?.Sweep();
    }
}
