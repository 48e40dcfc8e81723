namespace Bpfilter.Daemon.Tests.Server;

/// <summary>A uniquely named network namespace, deleted on dispose.</summary>
internal sealed class NetNs : IDisposable
{
    public string Name { get; }

    public NetNs()
    {
        Name = "bpfd" + Guid.NewGuid().ToString("N")[..10];
        var r = Proc.Run("ip", ["netns", "add", Name]);
        Assert.True(r.Exit == 0, $"ip netns add {Name}: {r.Stderr}");
    }

    public string HandlePath => "/run/netns/" + Name;

    /// <summary>Runs a command inside the namespace.</summary>
    public ProcResult Exec(string file, IEnumerable<string> args, IDictionary<string, string>? env = null, string? stdin = null) =>
        Proc.Run("ip", new[] { "netns", "exec", Name, file }.Concat(args), env, stdin, TimeSpan.FromMinutes(3));

    public void Dispose() => Proc.Run("ip", ["netns", "del", Name]);
}
