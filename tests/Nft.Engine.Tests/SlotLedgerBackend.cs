using Nft.Bytecode.Objects;

namespace Nft.Engine.Tests;

/// <summary>
/// A backend whose saved state is shaped as bpfilterd's counter state (Bpfilter.Daemon CounterState): a version,
/// then per rule of every chain, in chain order, its family, table, chain, handle, 32 bytes of carried totals and
/// reset baseline, and its counter slot; then the slot layout (next slot, each slot's id). Slots are kept by rule
/// and handed out anew only to new rules, as the lifter's are. Imported bytes are exported as they are until the
/// next commit. Lets the engine's rule journal records be tested with a backend state that grows with the rules.
/// </summary>
internal sealed class SlotLedgerBackend : IRulesetBackend
{
    readonly Dictionary<(byte, string, string, ulong), ulong> _slots = [];
    List<(byte, string, string, ulong)>? _staged;
    List<(byte, string, string, ulong)> _rules = [];
    ulong _next;
    byte[]? _imported;

    public void Prepare(RulesetChange change)
    {
        if (change.ElementsOnly) return;
        _staged = [.. change.Tables.SelectMany(t => t.Chains.SelectMany(c => c.Rules.Select(r => (t.Family, t.Name, c.Name, r.Handle!.Value))))];
    }

    public void Commit()
    {
        if (_staged is not { } rules) return;
        _staged = null;
        _imported = null;
        var live = rules.ToHashSet();
        foreach (var gone in _slots.Keys.Where(k => !live.Contains(k)).ToList()) _slots.Remove(gone);
        foreach (var r in rules) if (!_slots.ContainsKey(r)) _slots[r] = _next++;
        _rules = rules;
    }

    public void Abort() => _staged = null;
    public CounterValue? ReadCounter(CounterRef counter) => null;
    public void ResetCounter(CounterRef counter) { }
    public void ImportState(ReadOnlySpan<byte> state) => _imported = state.ToArray();

    public byte[]? ExportState()
    {
        if (_imported != null) return _imported;
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        w.Write((byte)4);
        w.Write(_rules.Count);
        foreach (var (family, table, chain, handle) in _rules)
        {
            w.Write(family);
            w.Write(table);
            w.Write(chain);
            w.Write(handle);
            w.Write(new byte[32]);
            w.Write(_slots[(family, table, chain, handle)]);
        }
        w.Write(_next);
        w.Write(_rules.Count);
        foreach (var r in _rules) w.Write(_slots[r]);
        w.Flush();
        return ms.ToArray();
    }
}
