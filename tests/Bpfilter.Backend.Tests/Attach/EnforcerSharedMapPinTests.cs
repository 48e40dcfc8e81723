using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>
/// The shared quota and limit maps pinned at the pin root: a restarted enforcer reopens a pin of the right shape
/// (the same kernel map, its values as they are), refuses one of another shape (its states start anew) and
/// replaces or removes what it did not reopen at its next SyncPins.
/// </summary>
public sealed class EnforcerSharedMapPinTests
{
    [Fact]
    public void APinOfTheRightShapeIsReopenedAndOneOfAnotherShapeIsReplaced()
    {
        var mount = Path.Combine(Path.GetTempPath(), $"bf-pins-{Guid.NewGuid():N}");
        Directory.CreateDirectory(mount);
        ProcessRunner.Check("mount", "-t", "bpf", "bpf", mount);
        try
        {
            // an earlier process left a limit map with a bucket, and something else where the quota map belongs
            using (var limits = LimitMap.Create())
            using (var other = BpfMap.Create(BpfMapType.Array, "other", 4, 8, 16))
            {
                limits.Write(7, 11, 22);
                limits.Map.Pin(Path.Combine(mount, Enforcer.LimitsPin));
                other.Pin(Path.Combine(mount, Enforcer.QuotasPin));
            }
            using (var e = new Enforcer())
            {
                var notes = e.ReopenSharedMaps(mount);
                Assert.Contains(notes, n => n.StartsWith("the pinned quotas map cannot be used (", StringComparison.Ordinal) && n.EndsWith("its states start anew", StringComparison.Ordinal));
                Assert.Contains("reopened the pinned limits map", notes);
                e.PinRoot = mount;
                Assert.Empty(e.SyncPins());
                // no quota map in use: the foreign pin is gone; the reopened limit map stays pinned
                Assert.False(File.Exists(Path.Combine(mount, Enforcer.QuotasPin)));
                using var again = LimitMap.Adopt(BpfMap.Open(Path.Combine(mount, Enforcer.LimitsPin)));
                Assert.Equal((11UL, 22UL), again.Read(7));
            }
            using (var e = new Enforcer())
            {
                var notes = e.ReopenSharedMaps(mount);
                Assert.Contains("no pinned quotas map: its states start anew", notes);
                Assert.Contains("reopened the pinned limits map", notes);
            }
        }
        finally
        {
            ProcessRunner.Check("umount", mount);
            Directory.Delete(mount);
        }
    }
}
