using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>
/// <see cref="Enforcer.SetQuota"/> makes a slot read what the kernel consumed whatever the slot held. A slot can hold less
/// than its base: a reopened pinned map reset after the state file saved the base (a daemon killed between a `reset
/// quotas` and its state save). SetQuota took what <see cref="Enforcer.Quota"/> read (0 there) as the slot's count and left
/// it below its base, reading 0 after a quota moved from the kernel.
/// </summary>
[Collection("attach")]
public sealed class EnforcerSetQuotaTests
{
    const ulong Slot = 5, Base = 400;

    static Ruleset Quoted => new(ValueList.Of(new BaseChain("t/in", NfIn4, 0, Verdict.Accept, ValueList.Of(
        new Rule(ValueList<Matcher>.Empty, ValueList.Of<Statement>(new QuotaStatement(100_000, Over: true, StateSlot: Slot) { Used = Base }), Verdict.Accept)))),
        ValueList<Chain>.Empty, ValueList<Set>.Empty);

    [Fact]
    public void ASlotBelowItsBaseReadsWhatItIsSetTo()
    {
        using var pins = new IncrementalEnforcerTests.PinFs();
        using (var quotas = QuotaMap.Create())
        {
            quotas.Set(Slot, 10);
            quotas.Map.Pin(Path.Combine(pins.Path, Enforcer.QuotasPin));
        }
        using var veth = new VethPair();
        using var e = new Enforcer();
        e.Inherit(new Dictionary<ulong, ulong> { [Slot] = Base }, new HashSet<ulong>());
        Assert.Contains("reopened the pinned quotas map", e.ReopenSharedMaps(pins.Path));
        VethPair.InNamespace(veth.Server, () => { e.Apply(Quoted); return 0; });
        Assert.Equal(Base, e.QuotaBase(Slot));
        Assert.Equal(0UL, e.Quota(Slot));

        e.SetQuota(Slot, 87);
        Assert.Equal(87UL, e.Quota(Slot));
        e.SetQuota(Slot, 30);
        Assert.Equal(30UL, e.Quota(Slot));
    }
}
