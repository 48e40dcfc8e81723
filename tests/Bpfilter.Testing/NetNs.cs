namespace Bpfilter.Testing;

/// <summary>
/// A throwaway network namespace with a unique name, deleted on dispose, also when the test failed. Commands run in it
/// with <see cref="Exec"/>, managed code with <see cref="Run"/>. The name, bft-&lt;pid namespace&gt;-&lt;pid&gt;-&lt;random&gt;,
/// says which test process made it: a process killed before it disposed its namespaces leaves them behind, and the
/// next test process to make one removes them (<see cref="SweepOrphans"/>).
/// </summary>
public sealed class NetNs : IDisposable
{
    public const string Prefix = "bft-";
    public string Name { get; }
    bool _disposed;

    /// <summary>The names made in the current flow while <see cref="Made"/> runs its body (null otherwise).</summary>
    static readonly AsyncLocal<List<string>?> Tracked = new();

    static NetNs()
    {
        try
        {
            foreach (var name in SweepOrphans()) Console.Error.WriteLine($"removed network namespace {name}: the test process that made it is gone");
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"removing the network namespaces of earlier test processes failed: {e.Message}");
        }
    }

    /// <summary>A new empty namespace (only lo, down).</summary>
    public NetNs()
    {
        Name = $"{Prefix}{PidNamespace}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}";
        ProcessRunner.Check("ip", "netns", "add", Name);
        Tracked.Value?.Add(Name);
    }

    /// <summary>Whether the namespace <paramref name="name"/> exists (is named under /run/netns).</summary>
    public static bool Exists(string name) => File.Exists($"/run/netns/{name}");

    /// <summary>
    /// Runs <paramref name="body"/> and returns the names of the namespaces it made (in this flow only: those of tests
    /// running meanwhile are not among them) and what it threw: a helper that fails must leave none of them behind.
    /// </summary>
    public static (IReadOnlyList<string> Made, Exception? Thrown) Made(Action body)
    {
        var made = new List<string>();
        var outer = Tracked.Value;
        Tracked.Value = made;
        try
        {
            body();
            return (made, null);
        }
        catch (Exception e)
        {
            return (made, e);
        }
        finally
        {
            Tracked.Value = outer;
            outer?.AddRange(made);
        }
    }

    /// <summary>This process's pid namespace (its inode): a pid means the same process only within it.</summary>
    static readonly ulong PidNamespace = ulong.Parse(new FileInfo("/proc/self/ns/pid").LinkTarget!.TrimStart("pid:[".ToCharArray()).TrimEnd(']'));

    /// <summary>
    /// Deletes every namespace named by a test process of this pid namespace that no longer runs (killed at a deadline:
    /// no Dispose ran), and returns their names. Never one of a running test process (its pid exists), nor one named
    /// otherwise (another pid namespace's, or the older bft-&lt;random&gt;: whose process made it is unknown). A process still
    /// running inside a deleted namespace keeps it alive without its name. A pid reused since is taken as running.
    /// </summary>
    public static IReadOnlyList<string> SweepOrphans()
    {
        var removed = new List<string>();
        if (!Directory.Exists("/run/netns")) return removed;
        foreach (var path in Directory.GetFiles("/run/netns", Prefix + "*"))
        {
            var name = System.IO.Path.GetFileName(path);
            if (Creator(name) is not { } pid || Directory.Exists($"/proc/{pid}")) continue;
            // another test process sweeping at the same time may have deleted it first
            if (ProcessRunner.Run("ip", ["netns", "del", name]).Exit == 0) removed.Add(name);
        }
        return removed;
    }

    /// <summary>The pid of the test process of this pid namespace that made <paramref name="name"/>, if it says.</summary>
    static int? Creator(string name)
    {
        var parts = name[Prefix.Length..].Split('-');
        return parts.Length == 3 && ulong.TryParse(parts[0], out var ns) && ns == PidNamespace && int.TryParse(parts[1], out var pid) && pid > 0
            ? pid : null;
    }

    /// <summary>
    /// A new namespace; with <paramref name="withDevices"/> it holds the devices every protocol case
    /// may name (veth0/veth1, a veth pair inside the namespace, left down so no traffic touches counters).
    /// </summary>
    public static NetNs Create(bool withDevices = true)
    {
        var ns = new NetNs();
        try
        {
            if (withDevices) ns.Ip("link", "add", "veth0", "type", "veth", "peer", "name", "veth1");
        }
        catch
        {
            ns.Dispose();
            throw;
        }
        return ns;
    }

    public string NetnsPath => $"/run/netns/{Name}";

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
        return ProcessRunner.Run("ip", all, stdin, timeout ?? TimeSpan.FromMinutes(3));
    }

    /// <summary>Starts a program inside the namespace and leaves it running (e.g. `nft monitor`).</summary>
    public BackgroundProcess Start(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null)
    {
        var all = new List<string> { "netns", "exec", Name };
        if (env != null)
        {
            all.Add("env");
            all.AddRange(env.Select(kv => $"{kv.Key}={kv.Value}"));
        }
        all.Add(file);
        all.AddRange(args);
        return BackgroundProcess.Start("ip", all);
    }

    /// <summary>`ip -n NAME ARGS`, throwing unless it succeeds; for setup commands.</summary>
    public string Ip(params string[] args) => ProcessRunner.Check("ip", ["-n", Name, .. args]);

    /// <summary>
    /// A veth pair from <paramref name="device"/> here to <paramref name="peerDevice"/> in
    /// <paramref name="peer"/>, with optional MAC addresses (aa:bb:...). Both ends stay down.
    /// </summary>
    public void AddVeth(string device, NetNs peer, string peerDevice, string? mac = null, string? peerMac = null)
    {
        var args = new List<string> { "link", "add", device };
        if (mac != null) args.AddRange(["address", mac]);
        args.AddRange(["type", "veth", "peer", "name", peerDevice]);
        if (peerMac != null) args.AddRange(["address", peerMac]);
        args.AddRange(["netns", peer.Name]);
        Ip([.. args]);
    }

    /// <summary>
    /// Waits until each device is operationally up with its queueing discipline attached. "ip link set up" returns
    /// before that: the carrier comes up through linkwatch, which may run a second later on a loaded machine, and
    /// until then the device's noop qdisc drops what is sent (a first packet, or the ARP request it waits on, is lost).
    /// </summary>
    public void WaitUntilUp(params string[] devices) => WaitUntilUp(Name, devices);

    /// <summary><see cref="WaitUntilUp(string[])"/> in the namespace named <paramref name="netns"/> (one another fixture made).</summary>
    public static void WaitUntilUp(string netns, params string[] devices)
    {
        var limit = Environment.TickCount64 + 15_000;
        foreach (var dev in devices)
            while (ProcessRunner.Check("ip", "-n", netns, "-o", "link", "show", "dev", dev) is var line
                   && (!line.Contains("state UP") || line.Contains(" qdisc noop ")))
            {
                if (Environment.TickCount64 > limit) throw new InvalidOperationException($"{dev} in {netns} never came up: {line.Trim()}");
                Thread.Sleep(10);
            }
    }

    /// <summary>Runs <paramref name="body"/> on a thread inside this namespace.</summary>
    public T Run<T>(Func<T> body) => Run(NetnsPath, body);

    /// <summary>
    /// Runs code inside the namespace at <paramref name="netnsPath"/> on a dedicated thread (Nft.Kernel's
    /// <see cref="Nft.Kernel.Netns"/>: setns moves only that thread; sockets opened there stay in it).
    /// </summary>
    public static T Run<T>(string netnsPath, Func<T> body) => Nft.Kernel.Netns.Run(netnsPath, body);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ProcessRunner.Run("ip", ["netns", "del", Name]);
    }
}
