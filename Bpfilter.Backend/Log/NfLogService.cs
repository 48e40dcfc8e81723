using System.Collections.Frozen;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Log;

/// <summary>
/// The daemon's end of `log`: consumes the ring buffer the programs write <see cref="LogEvent"/>s
/// to, finds each event's statement by its config id, formats the nf_log line and writes it to the
/// kernel log. The statement table is swapped whole when a ruleset is committed (events of a
/// statement that no longer exists are reported, not guessed at). Errors (an unknown config id, a
/// failed write) go to <c>onError</c> and never stop the consumer.
/// </summary>
public sealed class NfLogService : IDisposable
{
    private readonly KernelLogWriter _writer;
    private readonly Action<Exception> _onError;
    private readonly RingBufferConsumer _consumer;
    private volatile FrozenDictionary<uint, LogConfig> _configs = FrozenDictionary<uint, LogConfig>.Empty;
    private long _written, _suppressed;

    public NfLogService(BpfMap ringBuffer, KernelLogWriter writer, Action<Exception>? onError = null)
    {
        _writer = writer;
        _onError = onError ?? (_ => { });
        _consumer = new RingBufferConsumer(ringBuffer, OnRecord, _onError);
    }

    /// <summary>Lines written to the kernel log.</summary>
    public long Written => Interlocked.Read(ref _written);
    /// <summary>Lines the namespace guard suppressed, as the kernel would have.</summary>
    public long Suppressed => Interlocked.Read(ref _suppressed);

    public void SetConfigs(IReadOnlyDictionary<uint, LogConfig> configs) => _configs = configs.ToFrozenDictionary();

    private void OnRecord(ReadOnlySpan<byte> record)
    {
        var ev = LogEvent.Parse(record);
        if (!_configs.TryGetValue(ev.ConfigId, out var config))
            throw new InvalidOperationException($"log event for unknown log statement {ev.ConfigId}");
        if (_writer.Write(ev, config)) Interlocked.Increment(ref _written);
        else Interlocked.Increment(ref _suppressed);
    }

    public void Dispose() => _consumer.Dispose();
}
