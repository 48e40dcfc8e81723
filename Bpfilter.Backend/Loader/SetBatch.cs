namespace Bpfilter.Backend.Loader;

/// <summary>
/// Applies changes to the set maps of running programs so that packets see them all at once, as
/// nf_tables shows a transaction's elements only after its commit. Each program reads one copy of its
/// set maps per run (<see cref="LoadedProgram.Generation"/>): the batch is written to the standby
/// copies, every touched program switches its generation (one array update each), the kernel is made to
/// wait until no program that started before the switch still runs, then the same batch is written to
/// the copies packets left, which become the standby. When no program gets more than one key changed,
/// the switch is skipped: one map update is already atomic, and it is written to both copies.
/// <para>
/// The copies of a set the packet path writes are one pair for all their holders (<see cref="SetCopies"/>): each
/// holder brings the same change of them (its own bookkeeping records it), and it is written once per copy
/// (<see cref="SharedWrites"/>), not once per holder, which would also put the control plane's value back over
/// what a packet wrote in between.
/// </para>
/// </summary>
public static class SetBatch
{
    /// <summary>Upserts then deletes in one set map of one program.</summary>
    public sealed record Change(LoadedProgram Program, string Map, IReadOnlyList<byte[]> Deletes, IReadOnlyList<(byte[] Key, byte[] Value)> Upserts)
    {
        public int Count => Deletes.Count + Upserts.Count;
    }

    /// <summary>What failed (one message per program), the programs whose packets still see none of the batch, and the first exception.</summary>
    public sealed record Outcome(IReadOnlyList<string> Errors, IReadOnlySet<LoadedProgram> Failed, Exception? First);

    /// <summary>
    /// Applies <paramref name="changes"/>. A program where writing the standby copies fails keeps showing
    /// all of its previous contents (nothing of the batch); the other programs take the whole batch.
    /// </summary>
    public static Outcome Apply(IReadOnlyList<Change> changes)
    {
        var outcome = Write(changes);
        // the batch is in both copies now: the buckets of the elements it deleted are no one's any more; a set's
        // copies (and its bucket map) are one for all their holders, so each is swept once
        var touched = changes.Where(c => c.Deletes.Count > 0 || c.Upserts.Count > 0)
            .Select(c => c.Program.PacketWrittenCopies(c.Map)).OfType<SetCopies>().Distinct();
        foreach (var copies in touched)
            try
            {
                copies.SweepBuckets();
            }
            catch (Libbpf.BpfException)
            {
                // a bucket left over is taken by a later sweep; it never answers for a new element (another stamp)
            }
        return outcome;
    }

    static Outcome Write(IReadOnlyList<Change> changes)
    {
        var errors = new List<string>();
        var failed = new HashSet<LoadedProgram>();
        Exception? first = null;
        void Fail(LoadedProgram p, string what, Exception e)
        {
            errors.Add($"{what} of {p.Compiled.Name} failed, its packets see none of the batch: {e.Message}");
            failed.Add(p);
            first ??= e;
        }
        var writes = new SharedWrites();
        // latest on the packet's path first: a packet that already saw the batch at one hook sees it at
        // every later hook (the reverse, new then old, cannot happen in nf_tables, whose generation is global)
        var byProgram = changes.Where(c => c.Count > 0).GroupBy(c => c.Program)
            .OrderByDescending(g => g.Key.Compiled.PathOrder.Stage).ThenByDescending(g => g.Key.Compiled.PathOrder.Priority).ToList();
        if (byProgram.All(g => g.Sum(c => c.Count) <= 1))
        {
            foreach (var g in byProgram)
            {
                var p = g.Key;
                var c = g.Single();
                try
                {
                    writes.Write(p.Generation, c);
                }
                catch (Exception e) when (e is Libbpf.BpfException or ArgumentException)
                {
                    Fail(p, "a set map update", e);
                    continue;
                }
                p.Record(c.Map, c.Upserts, c.Deletes);
                try
                {
                    writes.Write(p.Standby, c);
                    p.FollowLive(c.Map, c.Upserts, c.Deletes);
                }
                catch (Exception e) when (e is Libbpf.BpfException or ArgumentException)
                {
                    // packets see the change; the standby copy is rewritten before its next use
                }
            }
            return new Outcome(errors, failed, first);
        }
        // programs sharing a set map with a touched one switch with it, even without changes of their own: the
        // holders of shared copies must read the same copy, or one's standby would be the copy another reads
        var touched = byProgram.ToDictionary(g => g.Key, g => (IEnumerable<Change>)g);
        var group = LoadedProgram.ShareGroup(touched.Keys)
            .OrderByDescending(p => p.Compiled.PathOrder.Stage).ThenByDescending(p => p.Compiled.PathOrder.Priority).ToList();
        var written = new List<LoadedProgram>();
        var broken = new HashSet<LoadedProgram>();
        foreach (var p in group)
        {
            try
            {
                foreach (var c in touched.GetValueOrDefault(p, [])) writes.Write(p.Standby, c);
                written.Add(p);
            }
            catch (Exception e) when (e is Libbpf.BpfException or ArgumentException)
            {
                foreach (var c in touched.GetValueOrDefault(p, [])) p.MarkStale(c.Map, p.Standby);
                Fail(p, "writing the standby set maps", e);
                broken.Add(p);
            }
        }
        // a failure leaves every program sharing maps with it at the old copies (theirs hold part of the batch now)
        HashSet<LoadedProgram> held = broken.Count == 0 ? [] : LoadedProgram.ShareGroup(broken);
        var switched = new List<IGrouping<LoadedProgram, Change>>();
        var switchedPrograms = new List<LoadedProgram>();
        foreach (var p in written)
        {
            if (held.Contains(p))
            {
                foreach (var c in touched.GetValueOrDefault(p, [])) p.MarkStale(c.Map, p.Standby);
                if (touched.ContainsKey(p) && !failed.Contains(p))
                    Fail(p, "switching the set maps", new InvalidOperationException("a program sharing its set maps failed to take the batch"));
                continue;
            }
            try
            {
                p.SwitchGeneration();
                switchedPrograms.Add(p);
                if (byProgram.FirstOrDefault(g => g.Key == p) is { } g) switched.Add(g);
            }
            catch (Exception e) when (e is Libbpf.BpfException or ArgumentException)
            {
                foreach (var c in touched.GetValueOrDefault(p, [])) p.MarkStale(c.Map, p.Standby);
                Fail(p, "writing the standby set maps", e);
            }
        }
        if (switchedPrograms.Count == 0) return new Outcome(errors, failed, first);
        foreach (var g in switched)
            foreach (var c in g) g.Key.Record(c.Map, c.Upserts, c.Deletes);
        try
        {
            switchedPrograms.First(p => p.WaitForReaders());
        }
        catch (Exception e) when (e is Libbpf.BpfException or ArgumentException)
        {
            // without the wait the old copies may still be read: leave them stale, they are rewritten before their next use
            errors.Add($"waiting for readers of the old set maps failed: {e.Message}");
            first ??= e;
            foreach (var g in switched)
                foreach (var c in g) g.Key.MarkStale(c.Map, g.Key.Standby);
            return new Outcome(errors, failed, first);
        }
        foreach (var g in switched)
            foreach (var c in g)
            {
                try
                {
                    writes.Write(g.Key.Standby, c);
                    g.Key.FollowLive(c.Map, c.Upserts, c.Deletes);
                }
                catch (Exception e) when (e is Libbpf.BpfException or ArgumentException)
                {
                    // packets see the batch; the copy they left is rewritten before its next use
                }
            }
        return new Outcome(errors, failed, first);
    }

    /// <summary>
    /// Writes changes to copies of set maps, each change of copies several programs hold (<see cref="SetCopies.Holders"/>)
    /// once: a holder bringing a change already written to that copy (the same deletes and upserts) takes the first
    /// write's outcome, its failure included, instead of writing it again.
    /// </summary>
    sealed class SharedWrites
    {
        readonly Dictionary<(SetCopies Copies, int Copy), List<(Change Change, Exception? Failure)>> _done = [];

        public void Write(int copy, Change c)
        {
            if (c.Program.PacketWrittenCopies(c.Map) is not { Holders.Count: > 1 } shared)
            {
                c.Program.WriteCopy(copy, c.Map, c.Upserts, c.Deletes);
                return;
            }
            if (!_done.TryGetValue((shared, copy), out var done)) _done[(shared, copy)] = done = [];
            foreach (var (d, failure) in done)
            {
                if (!Same(d, c)) continue;
                if (failure != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
                return;
            }
            try
            {
                c.Program.WriteCopy(copy, c.Map, c.Upserts, c.Deletes);
                done.Add((c, null));
            }
            catch (Exception e)
            {
                done.Add((c, e));
                throw;
            }
        }

        static bool Same(Change a, Change b) =>
            a.Deletes.Count == b.Deletes.Count && a.Upserts.Count == b.Upserts.Count
            && a.Deletes.Zip(b.Deletes).All(p => p.First.AsSpan().SequenceEqual(p.Second))
            && a.Upserts.Zip(b.Upserts).All(p => p.First.Key.AsSpan().SequenceEqual(p.Second.Key) && p.First.Value.AsSpan().SequenceEqual(p.Second.Value));
    }
}
