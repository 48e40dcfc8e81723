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
using var backend = options.Enforce
    ? new Bpfilter.Daemon.Enforcement.EnforcingBackend(kernelSocket != null ? new Nft.Kernel.KernelPlacement(kernelSocket) : null, Log, Fault(options.Fault))
    : null;
if (options.Enforce && !options.BpfOnly && kernelSocket == null) return 1;
// Only bpf-only refuses at once what the BPF side never runs (nat/route chains, arp/bridge tables, other objects):
// by default those go to the kernel's nf_tables, and --no-enforce emulates everything the kernel accepts.
var endpoint = new Nft.Engine.NfTablesEndpoint(new Nft.Engine.NfTablesOptions
{
    Backend = backend,
    RefuseOutOfScope = options.Enforce && options.BpfOnly,
});
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

// The kernel's nf_tables in this namespace holds only what the daemon placed there: the daemon starts with an
// empty ruleset, so tables left from an earlier run go (they would otherwise run beside what nft is shown).
static Nft.Kernel.KernelNfTablesSocket? OpenKernel()
{
    try
    {
        var socket = Nft.Kernel.KernelNfTablesSocket.Open();
        var tables = socket.Dump<Nft.Bytecode.Objects.Table>(Nft.Bytecode.NftMsgType.GetTable, 0, new Nft.Bytecode.Objects.Table());
        foreach (var t in tables) Log($"removing kernel nf_tables table {Nft.Lifter.FamilyNames.Of(t.Family)} {t.Name} left from before");
        new Nft.Kernel.KernelPlacement(socket).Reset();
        return socket;
    }
    catch (Exception e)
    {
        Log($"cannot open the kernel's nf_tables (needed to place chains BPF cannot run; --placement bpf-only does without): {e.Message}");
        return null;
    }
}

static Func<string, Exception?>? Fault(string? spec)
{
    if (spec?.Split('=', 2) is not [var stage, var file]) return null;
    return s => s == stage && File.Exists(file) ? new IOException($"injected fault at {stage} ({file} exists)") : null;
}
