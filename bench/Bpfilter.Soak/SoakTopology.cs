using Bpfilter.Testing;

namespace Bpfilter.Soak;

/// <summary>
/// The soak's namespaces: a sender joined by a veth pair to the firewall (bpfilterd enforcing, its
/// attach points pinned on a bpf file system of its own so that they outlive kill -9), and an oracle
/// namespace whose kernel nf_tables gets the same batches (it holds a device of the firewall's name
/// for netdev chains, and no traffic). All removed on dispose.
/// </summary>
public sealed class SoakTopology : IDisposable
{
    public const string Device = "sk0", SenderDevice = "sk1";
    public const string FirewallAddress = "198.19.77.1", SenderAddress = "198.19.77.2";
    const string FirewallMac = "02:00:c6:13:4d:01", SenderMac = "02:00:c6:13:4d:02";

    readonly List<IDisposable> _owned = [];
    public string PinDir { get; }
    public DaemonProcess Daemon { get; }
    public NetNs Sender { get; }
    public NetNs Oracle { get; }

    public SoakTopology()
    {
        try
        {
            PinDir = Path.Combine("/tmp", "bpfd-soak-pins-" + Guid.NewGuid().ToString("N")[..12]);
            Directory.CreateDirectory(PinDir);
            ProcessRunner.Check("mount", "-t", "bpf", "bpf", PinDir);
            Daemon = DaemonProcess.Enforcing(["--pin-dir", PinDir]);
            _owned.Add(Daemon);
            Sender = new NetNs();
            _owned.Add(Sender);
            Oracle = new NetNs();
            _owned.Add(Oracle);
            Oracle.Ip("link", "add", Device, "type", "veth", "peer", "name", "sk9");
            Daemon.Ns.AddVeth(Device, Sender, SenderDevice, FirewallMac, SenderMac);
            Daemon.Ns.Ip("addr", "add", FirewallAddress + "/24", "dev", Device);
            Sender.Ip("addr", "add", SenderAddress + "/24", "dev", SenderDevice);
            foreach (var (ns, dev) in new[] { (Daemon.Ns, Device), (Sender, SenderDevice), (Daemon.Ns, "lo"), (Sender, "lo") })
                ns.Ip("link", "set", dev, "up");
            Daemon.Ns.WaitUntilUp(Device);
            Sender.WaitUntilUp(SenderDevice);
            // no ARP on the way: a datagram queued behind neighbour resolution could be lost
            Sender.Ip("neigh", "replace", FirewallAddress, "lladdr", FirewallMac, "dev", SenderDevice, "nud", "permanent");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>`nft ARGS` against the oracle's kernel.</summary>
    public ProcessResult Kernel(IEnumerable<string> args, string? stdin = null) => Oracle.Exec("nft", args, stdin);

    /// <summary>`bfnft ARGS` against bpfilterd.</summary>
    public ProcessResult Bpfilterd(IEnumerable<string> args, string? stdin = null) => Daemon.Bfnft(args, stdin);

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            try { _owned[i].Dispose(); } catch (Exception) { /* cleanup goes on */ }
        }
        if (PinDir != null && Directory.Exists(PinDir))
        {
            ProcessRunner.Run("umount", ["-l", PinDir]);
            try { Directory.Delete(PinDir); } catch (IOException) { }
        }
    }
}
