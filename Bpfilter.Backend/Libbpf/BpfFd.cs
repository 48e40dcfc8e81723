using System.Runtime.InteropServices;

namespace Bpfilter.Backend.Libbpf;

/// <summary>A file descriptor of a BPF object (program, map, link), closed when disposed.</summary>
public sealed class BpfFd : SafeHandle
{
    public BpfFd(int fd) : base(-1, ownsHandle: true) => SetHandle(fd);

    public override bool IsInvalid => handle < 0;

    /// <summary>The raw fd; valid only while this handle is alive (use DangerousAddRef for long calls).</summary>
    public int Value => IsClosed ? throw new ObjectDisposedException(nameof(BpfFd)) : (int)handle;

    protected override bool ReleaseHandle() => Native.Close((int)handle) == 0;
}
