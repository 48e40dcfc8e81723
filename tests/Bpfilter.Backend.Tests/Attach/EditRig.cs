using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using Bpfilter.Testing;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>
/// An enforcer filtering one XDP chain on a veth pair of its own, for tests of edits that keep the running program
/// (GroupedRunEditTests, ClassifiedRunEditTests): commits and stages rulesets, and says which program runs.
/// </summary>
class EditRig : IDisposable
{
    public static readonly XdpIngress Xdp = new(VethPair.ServerDevice);

    readonly VethPair _veth;
    public readonly Enforcer Enforcer;
    public Ruleset Current;

    public EditRig(Ruleset initial)
    {
        Current = initial;
        _veth = new();
        // a throwing constructor is never disposed: the pair made above goes here or nowhere
        try { Enforcer = new(); }
        catch
        {
            _veth.Dispose();
            throw;
        }
    }

    public PrepareStats Commit(Ruleset rules)
    {
        var stats = Stage(rules);
        Assert.Empty(Enforcer.Commit());
        Current = rules;
        return stats;
    }

    public PrepareStats Stage(Ruleset rules) => VethPair.InNamespace(_veth.Server, () =>
    {
        var o = Enforcer.Prepare(rules);
        Assert.Null(o.Failure);
        return o.Stats!;
    });

    public LoadedProgram Program => Assert.Single(Enforcer.LivePrograms);
    public uint ProgramId => Enforcer.ProgramId(Xdp.AttachPoint);
    public uint Run(byte[] packet) => Enforcer.TestRun(Xdp.AttachPoint, packet)!.Value.ReturnValue;

    /// <summary>A map entry as text, to compare a map's contents with what a compile gives.</summary>
    public static string Hex((byte[] Key, byte[] Value) e) => $"{Convert.ToHexString(e.Key)}={Convert.ToHexString(e.Value)}";

    public void Dispose()
    {
        Enforcer.Dispose();
        _veth.Dispose();
    }
}
