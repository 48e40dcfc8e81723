using System.Collections.Immutable;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// A map the program needs, with its initial contents. A double-buffered map (every set map) is a
/// two-slot BPF_MAP_TYPE_ARRAY_OF_MAPS under <see cref="Name"/> whose slots hold two copies of the map
/// described here; the program reads the copy the generation map names (see <c>Loader/SetCopies</c>).
/// </summary>
public sealed record MapSpec(string Name, BpfMapType Type, int KeySize, int ValueSize, int MaxEntries,
    IReadOnlyList<(byte[] Key, byte[] Value)> Entries)
{
    public bool DoubleBuffered { get; init; }

    /// <summary>
    /// A set map the program itself writes (nft_dynset): its size is the set's exact `size`, and its copies
    /// hold elements the control plane never wrote (a stale copy is made equal to the live one, not to the
    /// control plane's record).
    /// </summary>
    public bool PacketWritten { get; init; }

    /// <summary>
    /// The statements the packet path gives the set's elements (their state lives in the value): programs share
    /// a packet-written map only when these are equal, as the kernel's elements keep the statements they were given.
    /// </summary>
    public string PacketStatements { get; init; } = "";

    /// <summary>The bucket map of the limits the packet path gives the set's elements (null: none), held beside the copies.</summary>
    public Loader.BucketSpec? Buckets { get; init; }

    /// <summary>BPF_F_* map flags.</summary>
    public uint Flags { get; init; }

    /// <summary>State every program shares (quotas, limits): the loader is given the map, it does not create one per program.</summary>
    public bool Shared { get; init; }
}

/// <summary>
/// The output of the code generator for one attach point: instructions (with symbolic map
/// references), the maps to create, and which counter slot each rule counter id got.
/// </summary>
public sealed record CompiledProgram(
    string Name,
    BpfProgType ProgramType,
    BpfAttachType AttachType,
    ImmutableArray<Instruction> Instructions,
    IReadOnlyList<MapSpec> Maps,
    IReadOnlyDictionary<ulong, int> CounterSlots,
    int AcceptCode,
    int DropCode)
{
    /// <summary>
    /// Where a packet meets the program on its path: XDP 0, tc ingress 1, prerouting 2, input and forward 3,
    /// output 4, postrouting 5, tc egress 6, then the hook's priority. Set batches switch programs latest
    /// first, so a packet that saw a batch at one hook sees it at every later one, as in nf_tables.
    /// </summary>
    public (int Stage, int Priority) PathOrder { get; init; }

    /// <summary>The first counter slot no counter of this program (or of those it was compiled after, see <see cref="CounterLayout"/>) held.</summary>
    public int CounterSlotsUsed { get; init; }

    /// <summary>Name of the per-CPU array holding {packets, bytes} per counter slot.</summary>
    public const string CountersMap = "counters";

    /// <summary>Name of the one-slot array holding which copy of the set maps packets read (0 or 1).</summary>
    public const string GenerationMap = "generation";
    /// <summary>Name of the array of quota states (bytes consumed per state slot), shared by all programs.</summary>
    public const string QuotasMap = "quotas";

    /// <summary>Name of the array of limit token buckets ({lock, last, tokens} per state slot), shared by all programs.</summary>
    public const string LimitsMap = "limits";

    /// <summary>Name of the ring buffer `log` statements write their events to.</summary>
    public const string LogEventsMap = "log_events";

    /// <summary>Name of the BPF_MAP_TYPE_PROG_ARRAY holding <see cref="Segments"/> for the tail calls between them.</summary>
    public const string SegmentsMap = "segments";

    /// <summary>
    /// The rest of a program split for the verifier (see <c>ProgramCompiler.Segments.cs</c>): segment k
    /// (k = index + 1) is loaded as a program of its own and put in <see cref="SegmentsMap"/> at every slot
    /// <see cref="TailCallSlots"/> gives it. Empty for a program that fits in one.
    /// </summary>
    public ImmutableArray<ImmutableArray<Instruction>> Segments { get; init; } = [];

    /// <summary>
    /// Entry label of every regular chain's subprogram → whether it is a global function. A segment holding a global
    /// one is loaded with BTF and func_info for all its functions (Libbpf/ProgramBtf); one without, as before.
    /// </summary>
    public IReadOnlyDictionary<string, bool> Functions { get; init; } = new Dictionary<string, bool>();

    /// <summary>Prog-array slot → segment number (1 = <see cref="Segments"/>[0]).</summary>
    public IReadOnlyDictionary<int, int> TailCallSlots { get; init; } = new Dictionary<int, int>();

    /// <summary>Instructions of the program and all its segments.</summary>
    public int InstructionCount => Instructions.Sum(i => i.Slots) + Segments.Sum(s => s.Sum(i => i.Slots));

    /// <summary>What each `log` statement of the program says, by the config id its events carry.</summary>
    public IReadOnlyDictionary<uint, Log.LogConfig> LogConfigs { get; init; } = new Dictionary<uint, Log.LogConfig>();

    public string Disassembly => Segments.IsEmpty ? Disassembler.Format(Instructions)
        : string.Join("\n", Segments.Select((s, i) => $"; segment {i + 1}, slot(s) {string.Join(",", TailCallSlots.Where(t => t.Value == i + 1).Select(t => t.Key).Order())}\n" + Disassembler.Format(s))
            .Prepend(Disassembler.Format(Instructions)));

    /// <summary>How each set's elements are encoded in its map, for element updates without a reload.</summary>
    internal IReadOnlyDictionary<string, SetLayout> SetLayouts { get; init; } = new Dictionary<string, SetLayout>();

    /// <summary>The program's classifiers in the order they were compiled (their tables' slots and rule bases follow it).</summary>
    internal IReadOnlyList<ClassifierRecord> Classifiers { get; init; } = [];

    /// <summary>
    /// The layouts its classifiers were compiled with (a program edited in place keeps those of its last compile): a
    /// recompile whose classifier is equal to one of them takes its classes instead of sweeping the fields again
    /// (<see cref="ClassIdHint"/>, issue 12).
    /// </summary>
    internal IReadOnlyList<ClassifierLayout> ClassifierLayouts { get; init; } = [];

    /// <summary>Where the one base chain tail-calls the rules appended after its classifier (null: it does not; see <c>ProgramCompiler.Tail.cs</c>).</summary>
    public ChainTail? Tail { get; init; }
}
