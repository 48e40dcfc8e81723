using System.Collections.Immutable;
using Nft.Engine.Model;
using Nft.Netlink;

namespace Nft.Engine;

public sealed partial class NfTablesEndpoint
{
    /// <summary>
    /// The committed state as bytes (<see cref="StateCodec"/>): what <see cref="ImportState"/> needs to
    /// answer nft as before, handles and generation included. Counter cells are the emulated part only;
    /// what the data plane counted stays with the data plane (pinned BPF maps, the kernel's rules).
    /// </summary>
    public byte[] ExportState()
    {
        lock (_lock) return Encode(_ns.Backend.ExportState());
    }

    /// <summary>The committed state with <paramref name="backend"/> as the backend's part.</summary>
    byte[] Encode(byte[]? backend) =>
        StateCodec.Encode(_ns.Committed, new StateCodec.Counters(_ns.Generation, _ns.TableHandle, _ns.ElementSeq, backend, _ns.ClockOffsetMs));

    /// <summary>
    /// The backend's state in what was last handed out to be saved: the state <see cref="SaveState"/> gave
    /// <see cref="NfTablesOptions.StateChanged"/>, or the last rule record <see cref="NfTablesOptions.RulesCommitted"/> kept,
    /// or what <see cref="ImportState(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/> replayed. A rule record's backend part is
    /// the change from it (<see cref="BackendStateDelta"/>), so it must be what the journal's replay has reached by then;
    /// <see cref="ExportState"/> called for anything else (a test, a dump) does not move it.
    /// </summary>
    byte[]? _savedBackend;
    /// <summary><see cref="StateCodec.Fnv1a"/> of <see cref="_savedBackend"/> once a rule record hashed it (null: not yet).</summary>
    ulong? _savedBackendHash;

    /// <summary>
    /// Hands the committed state to <see cref="NfTablesOptions.StateChanged"/>, exported here once: the backend's
    /// part of those very bytes is what the next rule record is a change from.
    /// </summary>
    void SaveState()
    {
        if (_ns.Options.StateChanged is not { } save) return;
        var backend = _ns.Backend.ExportState();
        save(Encode(backend));
        _savedBackend = backend;
        _savedBackendHash = null;
    }

    /// <summary>
    /// Replaces the committed state by one <see cref="ExportState"/> wrote; the backend gets back its own part
    /// (<see cref="IRulesetBackend.ImportState"/>) but enforces nothing yet (<see cref="Reenforce"/> does). Throws <see cref="InvalidDataException"/> naming what is
    /// wrong when the bytes are not a complete, intact state; nothing changes then.
    /// </summary>
    public void ImportState(ReadOnlySpan<byte> state) => ImportState(state, []);

    /// <summary>
    /// As <see cref="ImportState(ReadOnlySpan{byte})"/>, then the element journal that followed the state
    /// (<see cref="NfTablesOptions.ElementsCommitted"/>'s records after <see cref="JournalHeader"/>) applied.
    /// A journal that follows another state is ignored.
    /// </summary>
    public void ImportState(ReadOnlySpan<byte> state, ReadOnlySpan<byte> journal)
    {
        var (snapshot, counters) = StateCodec.Decode(state);
        (snapshot, counters) = StateCodec.Replay(state, snapshot, counters, journal);
        if (counters.Generation == 0) throw new InvalidDataException("bpfilter-nft state: generation 0");
        lock (_lock)
        {
            // the backend's part first: if it refuses its bytes, nothing has changed
            if (counters.Backend is { } b) _ns.Backend.ImportState(b);
            _savedBackend = counters.Backend;
            _savedBackendHash = null;
            _ns.Committed = OnThisClock(snapshot, counters.ClockOffsetMs);
            _ns.Generation = counters.Generation;
            _ns.TableHandle = counters.TableHandle;
            _ns.ElementSeq = counters.ElementSeq;
        }
    }

    /// <summary>The header an element journal that follows the state <paramref name="state"/> (<see cref="ExportState"/>'s bytes) starts with.</summary>
    public static byte[] JournalHeader(ReadOnlySpan<byte> state) => StateCodec.JournalHeader(state);

    /// <summary>Hands an element-only change to <see cref="NfTablesOptions.ElementsCommitted"/>; false when it is not taken (the whole state must be saved).</summary>
    bool Journal(uint from, IEnumerable<StateCodec.SetTouch> sets) =>
        _ns.Options.ElementsCommitted is { } append && append(StateCodec.JournalRecord(from, _ns.Generation, _ns.ElementSeq, _ns.TableHandle, _ns.Committed, sets));

    /// <summary>
    /// Hands a commit that changed rules of existing chains (and elements of existing sets) to
    /// <see cref="NfTablesOptions.RulesCommitted"/>, with the backend's state after it; false when the commit
    /// changed more (<see cref="StateCodec.RuleChanges"/>) or the record is not taken (the whole state must be saved).
    /// The backend's state goes as the change from <see cref="_savedBackend"/>.
    /// </summary>
    bool JournalRules(uint from, RulesetSnapshot before, Transaction tx)
    {
        if (_ns.Options.RulesCommitted is not { } append) return false;
        var sets = tx.TouchedElements().ToList();
        var touched = sets.Select(s => (s.Family, s.Table, s.Set)).ToHashSet();
        if (StateCodec.RuleChanges(before, _ns.Committed, touched, _ns.WholePasses ? null : tx.Touches) is not { } chains) return false;
        var backend = _ns.Backend.ExportState();
        // each backend state is hashed once: as the record's result here, then as the next record's base
        ulong? hash = backend != null ? StateCodec.Fnv1a(backend) : null;
        (ulong, ulong)? hashes = _savedBackend != null && hash is ulong h ? (_savedBackendHash ??= StateCodec.Fnv1a(_savedBackend), h) : null;
        if (!append(StateCodec.JournalRecord(from, _ns.Generation, _ns.ElementSeq, _ns.TableHandle, _ns.Committed, sets,
            chains, backend, _savedBackend, hashes))) return false;
        _savedBackend = backend;
        _savedBackendHash = hash;
        return true;
    }

    /// <summary>
    /// Element deadlines saved with the clock offset <paramref name="savedOffset"/>, moved onto this engine's
    /// clock. Both clocks run at the same rate, so an offset within a second of ours is the same clock (its
    /// reference is adopted, nothing moves); another clock (the monotonic clock a version 2 state used, or
    /// the kernel's jiffies) moves them by the change of offset in whole ticks: an element keeps the time
    /// it had left.
    /// </summary>
    RulesetSnapshot OnThisClock(RulesetSnapshot snapshot, long savedOffset)
    {
        var shift = _ns.ClockOffsetMs - savedOffset;
        if (Math.Abs(shift) < 1000)
        {
            _ns.ClockOffsetMs = savedOffset;
            return snapshot;
        }
        var tick = Math.Max(1, _ns.Options.TickMs);
        shift = shift / tick * tick;
        return snapshot with
        {
            Tables = snapshot.Tables.Select(t => t with
            {
                Sets = t.Sets.Select(s => s.Elements.Any(e => e.ExpiresAtMs != null)
                    ? s with { Elements = s.Elements.Where(e => e.ExpiresAtMs != null)
                        .Aggregate(s.Elements, (set, e) => set.SetItem(e with { ExpiresAtMs = e.ExpiresAtMs + shift })) }
                    : s).ToImmutableList(),
            }).ToImmutableList(),
        };
    }

    /// <summary>
    /// In a new process after <see cref="ImportState"/>: removes the tables with the owner flag and saves the
    /// state. Their owner's socket was a connection to the process that saved the state and it is gone, so
    /// they go as nf_tables releases a table when its owning socket closes (<see cref="ReleasePort"/>; no
    /// generation is counted). Returns them (family, name).
    /// </summary>
    public IReadOnlyList<(byte Family, string Name)> ReleaseOrphanedOwnerTables()
    {
        lock (_lock)
        {
            var owned = _ns.Committed.Tables.Where(t => (t.Flags & (uint)Nft.Bytecode.NftTableFlags.Owner) != 0).ToList();
            if (owned.Count == 0) return [];
            _ns.Committed = _ns.Committed with { Tables = _ns.Committed.Tables.RemoveAll(owned.Contains) };
            SaveState();
            return owned.Select(t => (t.Family, t.Name)).ToList();
        }
    }

    /// <summary>Hands the committed ruleset to the backend as one change (after <see cref="ImportState"/>): prepare, then commit.</summary>
    public void Reenforce()
    {
        lock (_lock)
        {
            PrepareCommitted();
            _ns.Backend.Commit();
        }
    }

    /// <summary>
    /// The backend's own commit of the committed ruleset, unchanged, outside any request (bpfilterd moving a chain it
    /// held in the kernel's nf_tables once it may): prepared and committed as a request's commit is, under the same
    /// lock, and saved after. nft sees nothing: no generation is counted, nothing is notified. Gives why the backend
    /// refused it (it aborted: everything stays as it was), or null.
    /// </summary>
    public string? Recommit()
    {
        lock (_lock)
        {
            try
            {
                _ns.Backend.BeginRequest();
                PrepareCommitted();
            }
            catch (NetlinkException e)
            {
                return e.ExtAck ?? e.Message;
            }
            _ns.Backend.Commit();
            SaveState();
            return null;
        }
    }

    void PrepareCommitted()
    {
        var snapshot = _ns.Committed;
        try
        {
            _ns.Backend.Prepare(new RulesetChange(() => Model.SourceView.Of(snapshot), false, []));
        }
        catch
        {
            _ns.Backend.Abort();
            throw;
        }
    }
}
