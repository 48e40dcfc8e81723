using System.Diagnostics;

namespace Nft.Kernel.Tests;

/// <summary>Runs a command and returns its standard output; a non-zero exit is an error unless allowed.</summary>
internal static class Sh
{
    public static (int Code, string Out, string Err) Try(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    public static string Run(string file, params string[] args)
    {
        var (code, o, e) = Try(file, args);
        if (code != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {code}: {e}{o}");
        return o;
    }
}

/// <summary>A uniquely named network namespace, removed on dispose (also when the test failed).</summary>
internal sealed class TestNetns : IDisposable
{
    public TestNetns(string tag)
    {
        Name = $"nk-{tag}-{Guid.NewGuid().ToString("n")[..8]}";
        Sh.Run("ip", "netns", "add", Name);
        // a throwing constructor is never disposed: the namespace made above goes here or nowhere
        try { Exec("ip", "link", "set", "lo", "up"); }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Name { get; }
    public string Path => $"/run/netns/{Name}";

    public string Exec(params string[] cmd) => Sh.Run("ip", ["netns", "exec", Name, .. cmd]);
    public (int Code, string Out, string Err) TryExec(params string[] cmd) => Sh.Try("ip", ["netns", "exec", Name, .. cmd]);

    public string Nft(params string[] args) => Exec(["nft", .. args]);

    public void NftFile(string text)
    {
        var f = System.IO.Path.GetTempFileName();
        try
        {
            File.WriteAllText(f, text);
            Nft("-f", f);
        }
        finally { File.Delete(f); }
    }

    public string ListRuleset() => Nft("list", "ruleset");

    public KernelNfTablesSocket Socket() => KernelNfTablesSocket.OpenInNamespace(Path);

    public void Dispose() => Sh.Try("ip", "netns", "del", Name);
}

/// <summary>
/// Two namespaces joined by a veth pair: <see cref="Firewall"/> (198.18.0.1) holds the rules,
/// <see cref="Peer"/> (198.18.0.2) sends the traffic.
/// </summary>
internal sealed class VethPair : IDisposable
{
    public const string FirewallAddress = "198.18.0.1";
    public const string PeerAddress = "198.18.0.2";

    public VethPair(string tag)
    {
        Firewall = new TestNetns(tag + "f");
        try
        {
            Peer = new TestNetns(tag + "p");
            // IPv4 only: no neighbour discovery or MLD packets to count next to the test's pings
            foreach (var ns in new[] { Firewall, Peer })
                foreach (var scope in new[] { "all", "default" })
                    ns.Exec("sysctl", "-q", "-w", $"net.ipv6.conf.{scope}.disable_ipv6=1");
            Firewall.Exec("ip", "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", Peer.Name);
            Firewall.Exec("ip", "addr", "add", FirewallAddress + "/24", "dev", "veth0");
            Firewall.Exec("ip", "link", "set", "veth0", "up");
            Peer.Exec("ip", "addr", "add", PeerAddress + "/24", "dev", "veth1");
            Peer.Exec("ip", "link", "set", "veth1", "up");
            Bpfilter.Testing.NetNs.WaitUntilUp(Firewall.Name, "veth0");
            Bpfilter.Testing.NetNs.WaitUntilUp(Peer.Name, "veth1");
        }
        catch
        {
            Peer?.Dispose();
            Firewall.Dispose();
            throw;
        }
    }

    public TestNetns Firewall { get; }
    public TestNetns Peer { get; } = null!;

    /// <summary>Sends <paramref name="count"/> echo requests from the peer to the firewall; true if all were answered.</summary>
    /// <remarks>
    /// .NET's Ping uses a raw ICMP socket when privileged, created on the calling thread, so in the
    /// peer's namespace here. 56 bytes of data: 84-byte packets at the IP layer, like ping(8).
    /// </remarks>
    public bool Ping(int count) => Netns.Run(Peer.Path, () =>
    {
        using var ping = new System.Net.NetworkInformation.Ping();
        bool all = true;
        for (int i = 0; i < count; i++)
            all &= ping.Send(System.Net.IPAddress.Parse(FirewallAddress), 1000, new byte[56]).Status == System.Net.NetworkInformation.IPStatus.Success;
        return all;
    });

    public void Dispose()
    {
        Peer?.Dispose();
        Firewall.Dispose();
    }
}
