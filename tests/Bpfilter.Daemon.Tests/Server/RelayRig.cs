using Bpfilter.Daemon.Server;

namespace Bpfilter.Daemon.Tests.Server;

/// <summary>
/// nft through bfnft → socket server → kernel relay (namespace A), next to plain nft on the
/// kernel (namespace B). bfnft itself runs in namespace C, so a socket the interposer failed to
/// redirect could only ever touch C. Everything is removed on dispose.
/// </summary>
internal sealed class RelayRig : IDisposable
{
    readonly List<IDisposable> _owned = [];
    public System.Collections.Concurrent.ConcurrentQueue<string> Log { get; } = new();
    public TempSocketDir Dir { get; }
    public NetNs RelayNs { get; }
    public NetNs KernelNs { get; }
    public NetNs ClientNs { get; }
    public KernelRelayEndpoint Endpoint { get; }
    public DaemonServer Server { get; }

    public RelayRig(UnixFileMode mode = DaemonServer.DefaultSocketMode)
    {
        try
        {
            RepoPaths.BuildInterposer();
            Dir = Own(new TempSocketDir());
            RelayNs = Own(new NetNs());
            KernelNs = Own(new NetNs());
            ClientNs = Own(new NetNs());
            Endpoint = Own(new KernelRelayEndpoint(RelayNs));
            Server = new DaemonServer(Endpoint, Dir.Socket(), mode, Log.Enqueue);
            Server.Start();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    T Own<T>(T d) where T : IDisposable
    {
        _owned.Add(d);
        return d;
    }

    public Dictionary<string, string> Env => new() { ["BFNFT_SOCKET"] = Server.SocketPath };

    /// <summary>nft ARGS through the interposer and the daemon socket.</summary>
    public ProcessResult Bfnft(IEnumerable<string> args, string? stdin = null) =>
        ClientNs.Exec(RepoPaths.Bfnft, args, stdin, env: Env);

    /// <summary>nft ARGS on the kernel (the oracle).</summary>
    public ProcessResult Kernel(IEnumerable<string> args, string? stdin = null) =>
        KernelNs.Exec("nft", args, stdin);

    /// <summary>Runs the same command both ways and requires the same exit code, stdout and stderr.</summary>
    public ProcessResult Same(params string[] args) => SameWithInput(null, args);

    public ProcessResult SameWithInput(string? stdin, params string[] args)
    {
        var k = Kernel(args, stdin);
        var b = Bfnft(args, stdin);
        string what = "nft " + string.Join(' ', args);
        Assert.True(k.Exit == b.Exit, $"{what}: exit {b.Exit} through bfnft, {k.Exit} on the kernel\n{b.Stderr}\nserver log:\n{string.Join('\n', Log)}");
        Assert.Equal(Normalize(k.Stdout), Normalize(b.Stdout));
        Assert.Equal(Normalize(k.Stderr), Normalize(b.Stderr));
        return b;
    }

    /// <summary>
    /// Generation events name the process that committed: nft on the kernel, the relaying test
    /// process here. That is the relay's identity, not the transport's, so it is masked.
    /// </summary>
    static string Normalize(string s) =>
        System.Text.RegularExpressions.Regex.Replace(s, @"by process \d+ \([^)]*\)", "by process PID (NAME)");

    public void Dispose()
    {
        try { Server?.StopAsync().GetAwaiter().GetResult(); } catch (Exception) { }
        for (int i = _owned.Count - 1; i >= 0; i--)
            try { _owned[i].Dispose(); } catch (Exception) { }
    }
}
