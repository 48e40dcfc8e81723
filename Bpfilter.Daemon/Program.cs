using System.Runtime.InteropServices;
using Bpfilter.Daemon;
using Bpfilter.Daemon.Server;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

// bpfilterd: serves nft (through the bfnft interposer) as the kernel's nf_tables would.
var options = Options.Parse(args, out var error);
if (options == null)
{
    if (error.Length > 0) Console.Error.WriteLine($"bpfilterd: {error}");
    Console.Error.WriteLine(Options.Usage);
    return error.Length > 0 ? 2 : 0;
}

if (options.Explain) return Bpfilter.Daemon.ExplainServer.Client(options.SocketPath);

// A batch that takes longer gets a log line with its phases (BPFILTERD_SLOW_BATCH_MS lowers it, e.g. to 0 for
// benchmarks that split single `nft add rule` batches).
var slowBatch = TimeSpan.FromMilliseconds(
    int.TryParse(Environment.GetEnvironmentVariable("BPFILTERD_SLOW_BATCH_MS"), out var slowMs) && slowMs >= 0 ? slowMs : 100);

static void Log(string message) =>
    Console.Error.WriteLine($"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} bpfilterd: {message}");

var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
void OnSignal(PosixSignalContext ctx)
{
    ctx.Cancel = true; // shut down cleanly (socket file removed) instead of the runtime's default exit
    Log($"{ctx.Signal}: shutting down");
    stopped.TrySetResult();
}
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);

// Enforcement (Bpfilter.Daemon/Enforcement) compiles base chains to BPF and places the others in the kernel's
// nf_tables; --no-enforce keeps the emulation alone.
using var kernelSocket = options.Enforce && !options.BpfOnly ? OpenKernel() : null;
var placement = kernelSocket != null ? new Nft.Kernel.KernelPlacement(kernelSocket) : null;
using var backend = options.Enforce
    ? new Bpfilter.Daemon.Enforcement.EnforcingBackend(placement, Log, Fault(options.Fault))
    : null;
if (options.Enforce && !options.BpfOnly && kernelSocket == null) return 1;
if (backend != null) PinAttachPoints(backend, options.PinDir);
if (backend != null) backend.ChainTails = options.ChainTails;
// The committed state is saved after every commit (Bpfilter.Daemon/Persistence) and restored below.
using var store = OpenStateStore(options.StateDir);
// --metrics: batches are counted from the start, so that restored and later commits are all in the totals.
var batchMetrics = options.Metrics != null ? new Bpfilter.Daemon.Metrics.BatchMetrics() : null;
// Only bpf-only refuses at once what the BPF side never runs (nat/route chains, arp/bridge tables, other objects):
// by default those go to the kernel's nf_tables, and --no-enforce emulates everything the kernel accepts.
// Element timeouts run on the kernel's jiffies in whole ticks, as nf_tables keeps them: BPF compares an
// element's expiry with bpf_jiffies64 (Bpfilter.Backend/Libbpf/KernelClock.cs); without that clock sets
// with timeouts are placed in the kernel (or refused with --placement bpf-only).
var jiffies = Bpfilter.Backend.Libbpf.KernelClock.Available;
var endpoint = new Nft.Engine.NfTablesEndpoint(new Nft.Engine.NfTablesOptions
{
    Backend = backend,
    Clock = jiffies ? Bpfilter.Backend.Libbpf.KernelClock.NowMs : null,
    TickMs = jiffies ? Bpfilter.Backend.Libbpf.KernelClock.TickMs!.Value : 1,
    RefuseOutOfScope = options.Enforce && options.BpfOnly,
    StateChanged = store == null ? null : store.Write,
    // element-only commits go to the journal unless the backend took its full path (its own state may have changed)
    ElementsCommitted = store == null ? null : record => backend?.LastCommitElementsOnly != false && store.Append(record),
    // rule records carry the backend's state after the commit, whichever path the backend took
    RulesCommitted = store == null ? null : record => store.Append(record),
    BatchFinished = outcome =>
    {
        batchMetrics?.Record(outcome);
        // where a slow batch's time went (a large `nft -f`): the engine's phases, the backend's own split is logged by its prepare
        if (outcome.Elapsed >= slowBatch && outcome.Phases is { } phases)
            Log($"batch {outcome.Result.ToString().ToLowerInvariant()} in {outcome.Elapsed.TotalMilliseconds:F0} ms, {phases}");
    },
});
Restore(endpoint, store, backend);
// a chain held in the kernel's nf_tables for its limits moves once they are known full, without waiting for a commit
backend?.HoldRecommit(endpoint.Recommit);
// Metrics listen before the nf_tables socket does: once a client can reach the daemon, a scrape can too.
using var bpfStats = options.Metrics != null && options.BpfStats && backend != null ? EnableBpfStats() : null;
await using var metrics = options.Metrics is { } listen
    ? new Bpfilter.Daemon.Metrics.MetricsServer(listen,
        () => Bpfilter.Daemon.Metrics.MetricsReport.Build(endpoint, backend, batchMetrics!,
            bpfStats != null || Bpfilter.Backend.Libbpf.BpfStats.EnabledBySysctl() == true), Log)
    : null;
try
{
    metrics?.Start();
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
{
    Log($"cannot serve metrics on {options.Metrics}: {e.Message}");
    return 1;
}
await using var server = new DaemonServer(new EngineEndpoint(endpoint), options.SocketPath, options.SocketMode, Log);
try
{
    server.Start();
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
{
    Log($"cannot listen on {options.SocketPath}: {e.Message}");
    return 1;
}
// `nft monitor trace`: the kernel traces the chains placed there, which are all the chains a traced packet meets.
using var traces = placement != null ? TraceRelay.Start(placement, server.Subscribers, Log) : null;
await using var explain = new Bpfilter.Daemon.ExplainServer(server.SocketPath, options.SocketMode,
    () => Bpfilter.Daemon.ExplainReport.Build(backend));
Log(!options.Enforce ? "--no-enforce: emulation only, nothing is attached"
    : options.BpfOnly ? "enforcing committed rulesets with BPF only (--placement bpf-only)"
    : "enforcing committed rulesets: BPF where it runs a chain exactly, the kernel's nf_tables otherwise");
SystemdNotify.Send("READY=1", Log);
await stopped.Task;
SystemdNotify.Send("STOPPING=1", Log);
await server.StopAsync();
return 0;

// The kernel's nf_tables in this namespace holds what the daemon placed there. Tables found at start are left
// running: a restored state adopts those it placed, and the first commit deletes or replaces every other one in
// the same kernel transaction (never a moment without them before that).
static Nft.Kernel.KernelNfTablesSocket? OpenKernel()
{
    try
    {
        return Nft.Kernel.KernelNfTablesSocket.Open();
    }
    catch (Exception e)
    {
        Log($"cannot open the kernel's nf_tables (needed to place chains BPF cannot run; --placement bpf-only does without): {e.Message}");
        return null;
    }
}

static void PinAttachPoints(Bpfilter.Daemon.Enforcement.EnforcingBackend backend, string pinDir)
{
    try
    {
        if (Bpfilter.Daemon.Persistence.BpfFs.Ensure(pinDir) is { } why)
        {
            Log($"attach points are not pinned, filtering stops when bpfilterd exits: {why}");
            return;
        }
        var dir = Path.Combine(pinDir, Bpfilter.Daemon.Persistence.NetnsInode.Current().ToString());
        Directory.CreateDirectory(dir);
        backend.PinUnder(dir);
        Log($"attach points are pinned under {dir}: they keep filtering while bpfilterd is not running");
    }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
    {
        Log($"attach points are not pinned, filtering stops when bpfilterd exits: {e.Message}");
    }
}

static Bpfilter.Daemon.Persistence.StateStore? OpenStateStore(string dir)
{
    try
    {
        return Bpfilter.Daemon.Persistence.StateStore.ForNamespace(dir, Log);
    }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
    {
        Log($"the committed ruleset is not saved (a restart starts empty): cannot use {dir}: {e.Message}");
        return null;
    }
}

// A saved state is imported and enforced again, taking over what the previous daemon left running (pinned attach
// points, kernel tables) rather than detaching and reattaching it. Without one (missing, unreadable, corrupt: moved
// aside as .corrupt) the daemon starts empty and what was left keeps enforcing until the first commit replaces it.
static void Restore(Nft.Engine.NfTablesEndpoint endpoint, Bpfilter.Daemon.Persistence.StateStore? store,
    Bpfilter.Daemon.Enforcement.EnforcingBackend? backend)
{
    if (store == null) return;
    var (outcome, bytes, journal) = store.Read();
    string? problem = outcome switch
    {
        Bpfilter.Daemon.Persistence.StateStore.Outcome.Missing => $"no saved state at {store.Path}",
        Bpfilter.Daemon.Persistence.StateStore.Outcome.Unreadable => $"state file {store.Path} cannot be read",
        Bpfilter.Daemon.Persistence.StateStore.Outcome.OtherNamespace =>
            $"state file {store.Path} belongs to an earlier namespace that had this inode; moved aside to {store.MoveAside(".stale")}",
        _ => null,
    };
    if (bytes != null)
    {
        try
        {
            endpoint.ImportState(bytes, journal);
        }
        catch (InvalidDataException e)
        {
            problem = $"state file {store.Path} is corrupt ({e.Message}); moved aside to {store.MoveAside()}";
        }
    }
    if (problem != null)
    {
        int kept = backend?.AdoptOnNextPrepare(kernelTables: false) ?? 0;
        Log($"{problem}: starting with an empty ruleset" + (backend == null ? "" :
            $"; {kept} kernel nf_tables table(s) and any attach points pinned by an earlier run keep enforcing until the first commit replaces them"));
        return;
    }
    var tables = endpoint.Ruleset.Tables.Count;
    Log($"restored {tables} table(s), generation {endpoint.Generation}, from {store.Path}");
    if (endpoint.ReleaseOrphanedOwnerTables() is { Count: > 0 } released)
        Log($"released {released.Count} owner table(s) (flags owner: the owner's connection ended with the previous run, as the kernel " +
            $"releases them when the owning socket closes): {string.Join(", ", released.Select(t => $"{Nft.Lifter.FamilyNames.Of(t.Family)} {t.Name}"))}");
    if (backend == null) return;
    backend.AdoptOnNextPrepare(kernelTables: true);
    try
    {
        endpoint.Reenforce();
    }
    catch (Exception e)
    {
        Log($"enforcing the restored ruleset failed, what the previous run left keeps enforcing until the next commit: {e.Message}");
    }
}

// BPF run time and count are accounted only while statistics are on; they cost every program run two clock reads,
// so only --metrics turns them on (not with --no-bpf-stats), for as long as the daemon holds the fd (CAP_SYS_ADMIN, as the kernel requires).
static Bpfilter.Backend.Libbpf.BpfFd? EnableBpfStats()
{
    try
    {
        var fd = Bpfilter.Backend.Libbpf.BpfStats.EnableRunTime();
        Log("metrics: BPF run-time statistics are on while bpfilterd runs");
        return fd;
    }
    catch (Bpfilter.Backend.Libbpf.BpfException e)
    {
        Log($"metrics: BPF run time and count stay off unless sysctl kernel.bpf_stats_enabled=1: {e.Message}");
        return null;
    }
}

static Func<string, Exception?>? Fault(string? spec)
{
    if (spec?.Split('=', 2) is not [var stage, var file]) return null;
    return s =>
    {
        if (s != stage || !File.Exists(file)) return null;
        // a FILE that says "kill": the daemon dies here, as on SIGKILL (no state export, no cleanup)
        if (File.ReadAllText(file).Trim() == "kill") System.Diagnostics.Process.GetCurrentProcess().Kill();
        return new IOException($"injected fault at {stage} ({file} exists)");
    };
}
