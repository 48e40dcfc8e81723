using System.Runtime.InteropServices;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Log;

/// <summary>
/// Reads a BPF_MAP_TYPE_RINGBUF map through libbpf (ring_buffer__new/poll/free) on a dedicated
/// thread and hands each record to <c>onRecord</c>, in the order the programs submitted them. The
/// native callback is an [UnmanagedCallersOnly] function that finds this object through a GCHandle,
/// so it works under NativeAOT. An exception thrown by <c>onRecord</c> never crosses into libbpf:
/// it is passed to <c>onError</c> and the loop goes on. Dispose stops the thread (within one poll
/// interval), consumes what is left and frees the ring buffer.
/// </summary>
public sealed unsafe class RingBufferConsumer : IDisposable
{
    /// <summary>How long one ring_buffer__poll waits, i.e. how quickly Dispose is noticed.</summary>
    public const int PollIntervalMs = 100;

    private readonly Action<ReadOnlySpan<byte>> _onRecord;
    private readonly Action<Exception> _onError;
    private readonly BpfMap _map;
    private readonly Thread _thread;
    private GCHandle _self;
    private nint _rb;
    private volatile bool _stopping;

    public RingBufferConsumer(BpfMap map, Action<ReadOnlySpan<byte>> onRecord, Action<Exception>? onError = null)
    {
        if (map.Type != BpfMapType.RingBuf) throw new ArgumentException($"map '{map.Name}' is a {map.Type} map, not a ring buffer");
        _map = map;
        _onRecord = onRecord;
        _onError = onError ?? (_ => { });
        _self = GCHandle.Alloc(this);
        var fdAdded = false;
        map.Fd.DangerousAddRef(ref fdAdded); // the map must outlive the ring buffer that mmaps it
        _rb = Native.RingBufferNew(map.Fd.Value, &OnSample, GCHandle.ToIntPtr(_self), null);
        if (_rb == 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            map.Fd.DangerousRelease();
            _self.Free();
            throw new BpfException($"creating a ring buffer reader for map '{map.Name}'", errno > 0 ? errno : 22);
        }
        _thread = new Thread(Run) { IsBackground = true, Name = $"ringbuf {map.Name}" };
        _thread.Start();
    }

    /// <summary>Records handed to the callback so far.</summary>
    public long Consumed => Interlocked.Read(ref _consumed);
    private long _consumed;

    private void Run()
    {
        while (!_stopping)
        {
            var rc = Native.RingBufferPoll(_rb, PollIntervalMs);
            if (rc < 0 && rc != -4) // EINTR is a normal wake-up
            {
                _onError(new BpfException($"polling ring buffer '{_map.Name}'", -rc));
                Thread.Sleep(PollIntervalMs);
            }
        }
        Native.RingBufferConsume(_rb); // what was submitted before Dispose is still delivered
    }

    [UnmanagedCallersOnly]
    private static int OnSample(nint ctx, byte* data, nuint size)
    {
        if (GCHandle.FromIntPtr(ctx).Target is not RingBufferConsumer self) return 0;
        try
        {
            Interlocked.Increment(ref self._consumed);
            self._onRecord(new ReadOnlySpan<byte>(data, checked((int)size)));
        }
        catch (Exception e)
        {
            try { self._onError(e); } catch { /* nothing may unwind into libbpf */ }
        }
        return 0;
    }

    public void Dispose()
    {
        if (_rb == 0) return;
        _stopping = true;
        _thread.Join();
        Native.RingBufferFree(_rb);
        _rb = 0;
        _map.Fd.DangerousRelease();
        _self.Free();
    }
}
