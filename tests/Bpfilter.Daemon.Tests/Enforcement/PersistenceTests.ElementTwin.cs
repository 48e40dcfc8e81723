using Bpfilter.Testing;

namespace Bpfilter.Daemon.Tests.Enforcement;

public sealed partial class PersistenceTests
{
    /// <summary>
    /// One ruleset with per-element statements in a kernel namespace (source 127.0.0.1 over lo) and in a pinned
    /// bpfilterd (the peer's address), its chain in BPF; the same changes and UDP bursts (<see cref="ElementBurst"/>)
    /// on both, and <see cref="Round"/> compares the listings.
    /// </summary>
    sealed class ElementTwin : IDisposable
    {
        public readonly NetNs Kernel = new();
        readonly PinFs _pins;
        public readonly EnforcementRig Rig;

        public ElementTwin(Func<string, string> ruleset, string placement)
        {
            try
            {
                // in the try: a bpffs that cannot be mounted must not leave Kernel behind
                _pins = new PinFs();
                Kernel.Ip("link", "set", "lo", "up");
                var load = Kernel.Exec("nft", ["-f", "-"], ruleset("127.0.0.1"));
                Assert.True(load.Exit == 0, load.Stderr);
                Rig = new EnforcementRig("--pin-dir", _pins.Path, "--placement", placement);
                Rig.Nft(ruleset(EnforcementRig.PeerAddr));
                Assert.Contains("table ip t chain in: BPF", Rig.Explain());
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        /// <summary>The same change on both sides, SRC being each side's source address.</summary>
        public void Apply(string change)
        {
            var k = Kernel.Exec("nft", ["-f", "-"], change.Replace("SRC", "127.0.0.1"));
            Assert.True(k.Exit == 0, k.Stderr);
            Rig.Nft(change.Replace("SRC", EnforcementRig.PeerAddr));
        }

        /// <summary>A burst from each side, then the same listing.</summary>
        public void Round(string step)
        {
            var sent = Kernel.Exec("bash", ["-c", ElementBurst("127.0.0.1")]);
            Assert.True(sent.Exit == 0, sent.Stderr);
            sent = Rig.Peer.Exec("bash", ["-c", ElementBurst(EnforcementRig.FwAddr)]);
            Assert.True(sent.Exit == 0, sent.Stderr);
            var expected = List();
            var actual = Rig.ListRuleset().Replace(EnforcementRig.PeerAddr, "127.0.0.1");
            Assert.True(expected == actual, $"{step}: the kernel lists\n{expected}\nbpfilterd lists\n{actual}\n{Rig.Daemon.Log}");
        }

        /// <summary>A kill and a restart, a clean stop and a restart, each followed by a round.</summary>
        public void Restarts()
        {
            Rig.Daemon.Kill();
            Rig.Daemon.Restart();
            Round("after a kill and a restart");
            Assert.Equal(0, Rig.Daemon.Terminate());
            Rig.Daemon.Restart();
            Round("after a clean stop and a restart");
        }

        /// <summary>The kernel's listing (`list ruleset`, or `list` of <paramref name="what"/>).</summary>
        public string List(params string[] what) => Kernel.Exec("nft", what.Length == 0 ? ["list", "ruleset"] : ["list", .. what]).Stdout;

        public void Dispose()
        {
            Rig?.Dispose();
            _pins?.Dispose();
            Kernel.Dispose();
        }
    }
}
