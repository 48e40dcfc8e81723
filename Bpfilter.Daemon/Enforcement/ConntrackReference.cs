using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using Nft.Kernel;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// Keeps conntrack switched on in the daemon's namespace while a BPF program reads it. A BPF_NETFILTER
/// program sees the conntrack entry nf_conntrack attached (prerouting/output priority -200), but
/// conntrack only runs while something holds a reference, which a program cannot take: the kernel
/// table <see cref="ConntrackSwitch"/> (<c>inet bpfilterd-conntrack</c>, a hookless chain with one
/// <c>ct state</c> load) holds it. Switched on before a transaction that needs it is staged (its own kernel
/// batch, outside the placement's validate/commit window), off after a commit that no longer needs it.
/// The table name is reserved: a user table <c>inet bpfilterd-conntrack</c> is refused (<see cref="IsReserved"/>).
/// </summary>
internal sealed class ConntrackReference(KernelNfTablesSocket? socket, Action<string> log) : IDisposable
{
    KernelNfTablesSocket? _socket = socket;
    bool _ownsSocket;

    /// <summary>Whether this daemon switched conntrack on (and has not switched it off since).</summary>
    public bool IsOn { get; private set; }

    public static bool IsReserved(byte family, string table) => family == ConntrackSwitch.Family && table == ConntrackSwitch.TableName;

    /// <summary>Whether any rule, verdict map or set of <paramref name="ruleset"/> reads a ct key.</summary>
    /// <param name="reads">Each chain's answer kept from earlier commits (null: walk every rule, which gives the same answer).</param>
    public static bool Needed(Ruleset ruleset, ChainFolds<CtReads>? reads = null) =>
        NeededBy.GetValue(ruleset, r => ReadsCt(r, reads) ? Yes : No) == Yes;

    internal static bool ReadsCt(Ruleset ruleset, ChainFolds<CtReads>? reads)
    {
        foreach (var s in ruleset.Sets)
            if (CtReads.Ct(s.Key)) return true;
        bool Chain(string name, ValueList<Rule> rules)
        {
            if (reads != null) return reads.Of(name, rules).Reads;
            foreach (var r in rules)
                if (CtReads.ReadBy(r)) return true;
            return false;
        }
        foreach (var c in ruleset.BaseChains)
            if (Chain(c.Name, c.Rules)) return true;
        foreach (var c in ruleset.Chains)
            if (Chain(c.Name, c.Rules)) return true;
        return false;
    }

    /// <summary>The answer per ruleset object (immutable): a commit asks for the same ruleset when staging and after committing.</summary>
    static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Ruleset, object> NeededBy = new();
    static readonly object Yes = new(), No = new();

    /// <summary>Switches conntrack on unless this daemon already did.</summary>
    public void On()
    {
        if (IsOn) return;
        ConntrackSwitch.On(Socket());
        IsOn = true;
        log($"conntrack switched on (kernel table inet {ConntrackSwitch.TableName}): a BPF chain reads ct");
    }

    /// <summary>Switches conntrack off if this daemon switched it on; failures are logged, not thrown.</summary>
    public void Off()
    {
        if (!IsOn) return;
        try
        {
            ConntrackSwitch.Off(Socket());
            IsOn = false;
            log("conntrack switched off: no BPF chain reads ct any more");
        }
        catch (Exception e)
        {
            log($"switching conntrack off failed, it stays on: {e.Message}");
        }
    }

    KernelNfTablesSocket Socket()
    {
        if (_socket != null) return _socket;
        // --placement bpf-only: no kernel placement socket, one of our own for the switch alone
        _socket = KernelNfTablesSocket.Open();
        _ownsSocket = true;
        return _socket;
    }

    public void Dispose()
    {
        if (_ownsSocket) _socket?.Dispose();
    }
}
