using Bpfilter.Backend.Log;
using Bpfilter.Backend.Loader;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// The kernel-log end of `log` statements run in BPF: one <see cref="NfLogService"/> per live program
/// that logs (its ring buffer, its statements' prefix, level and flags), writing nf_log lines to
/// /dev/kmsg under the kernel's per-namespace rule (nf_log_all_netns). Kept in step with the
/// programs after every commit: a new program gets a reader, a replaced one's reader drains and goes.
/// </summary>
internal sealed class LogSinks(Action<string> log) : IDisposable
{
    readonly Dictionary<LoadedProgram, NfLogService> _services = new(ReferenceEqualityComparer.Instance);
    KernelLogWriter? _writer;

    public void Sync(IReadOnlyList<LoadedProgram> live)
    {
        var keep = new HashSet<LoadedProgram>(ReferenceEqualityComparer.Instance);
        foreach (var p in live)
        {
            if (p.LogEvents is not { } ring || p.Compiled.LogConfigs.Count == 0) continue;
            keep.Add(p);
            if (_services.ContainsKey(p)) continue;
            try
            {
                _writer ??= Writer();
                var service = new NfLogService(ring, _writer, e => log($"log statement: {e.Message}"));
                service.SetConfigs(p.Compiled.LogConfigs);
                _services[p] = service;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or Bpfilter.Backend.Libbpf.BpfException)
            {
                log($"cannot read the log events of program {p.Program.Id}: {e.Message}; its log statements write nothing");
            }
        }
        foreach (var gone in _services.Keys.Where(p => !keep.Contains(p)).ToList())
        {
            _services[gone].Dispose();
            _services.Remove(gone);
        }
    }

    KernelLogWriter Writer()
    {
        var policy = NfLogNamespacePolicy.ForCurrentNamespace();
        log($"log statements write to the kernel log: {policy.Description}");
        return new KernelLogWriter(policy);
    }

    public void Dispose()
    {
        foreach (var s in _services.Values) s.Dispose();
        _services.Clear();
    }
}
