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

// Enforcement (Bpfilter.Daemon/Enforcement) compiles every committed base chain to BPF; --no-enforce keeps the emulation alone.
using var backend = options.Enforce ? new Bpfilter.Daemon.Enforcement.BpfRulesetBackend(Log) : null;
var endpoint = new Nft.Engine.NfTablesEndpoint(new Nft.Engine.NfTablesOptions { Backend = backend });
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
Log(options.Enforce ? "enforcing committed rulesets with BPF" : "--no-enforce: emulation only, nothing is attached");
SystemdNotify.Send("READY=1", Log);
await stopped.Task;
SystemdNotify.Send("STOPPING=1", Log);
await server.StopAsync();
return 0;
