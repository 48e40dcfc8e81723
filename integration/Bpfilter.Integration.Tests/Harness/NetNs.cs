namespace Bpfilter.Integration.Tests.Harness;

/// <summary>
/// A throwaway network namespace named bfnt-&lt;random&gt;, with the devices every protocol case may
/// name (veth0/veth1, a veth pair inside the namespace, left down so no traffic touches counters).
/// Deleted in Dispose, also when the test failed.
/// </summary>
public sealed class NetNs : IDisposable
{
    public string Name { get; }
    bool _disposed;

    NetNs(string name) => Name = name;

    public static NetNs Create(bool withDevices = true)
    {
        var name = $"bfnt-{Guid.NewGuid().ToString("N")[..10]}";
        ProcessRunner.Check("ip", "netns", "add", name);
        var ns = new NetNs(name);
        try
        {
            if (withDevices)
                ProcessRunner.Check("ip", "-n", name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1");
        }
        catch
        {
            ns.Dispose();
            throw;
        }
        return ns;
    }

    /// <summary>Runs a program inside the namespace (ip netns exec), no shell involved.</summary>
    public ProcessResult Exec(string file, IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? env = null)
    {
        var all = new List<string> { "netns", "exec", Name };
        if (env != null)
        {
            // ip netns exec keeps the environment, but env(1) makes the variables explicit and visible in logs.
            all.Add("env");
            all.AddRange(env.Select(kv => $"{kv.Key}={kv.Value}"));
        }
        all.Add(file);
        all.AddRange(args);
        return ProcessRunner.Run("ip", all, stdin, timeout);
    }

    public string NetnsPath => $"/run/netns/{Name}";

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ProcessRunner.Run("ip", ["netns", "del", Name]);
    }
}
