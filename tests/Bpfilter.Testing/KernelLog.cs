using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Bpfilter.Testing;

/// <summary>One /dev/kmsg record: syslog priority (facility * 8 + level) and the unescaped text.</summary>
public readonly record struct KmsgRecord(int Priority, string Text)
{
    public int Level => Priority & 7;
    public int Facility => Priority >> 3;
}

/// <summary>
/// Reads the kernel log records written after it was opened (/dev/kmsg, non-blocking, positioned at
/// the end), so a test sees exactly the lines its own packets produced.
/// </summary>
public sealed partial class KernelLog : IDisposable
{
    private readonly int _fd;
    private readonly List<KmsgRecord> _seen = new();

    public KernelLog()
    {
        _fd = Open("/dev/kmsg", 0x800 /* O_RDONLY | O_NONBLOCK */);
        if (_fd < 0) throw new InvalidOperationException($"open /dev/kmsg: errno {Marshal.GetLastPInvokeError()}");
        Lseek(_fd, 0, 2 /* SEEK_END */);
    }

    /// <summary>Waits until a record whose text starts with <paramref name="prefix"/> arrives.</summary>
    public KmsgRecord WaitFor(string prefix, int timeoutMs = 3000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (true)
        {
            Drain();
            var hit = _seen.FindIndex(r => r.Text.StartsWith(prefix, StringComparison.Ordinal));
            if (hit >= 0) return _seen[hit];
            if (Environment.TickCount64 > deadline) throw new TimeoutException($"no kernel log line starting with '{prefix}'");
            Thread.Sleep(20);
        }
    }

    /// <summary>All records so far whose text starts with <paramref name="prefix"/>.</summary>
    public IReadOnlyList<KmsgRecord> All(string prefix)
    {
        Drain();
        return _seen.Where(r => r.Text.StartsWith(prefix, StringComparison.Ordinal)).ToList();
    }

    private unsafe void Drain()
    {
        var buf = new byte[8192];
        while (true)
        {
            nint n;
            fixed (byte* p = buf) n = Read(_fd, p, buf.Length);
            if (n < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == 32 /* EPIPE: records overwritten, go on */) continue;
                return; // EAGAIN: nothing more
            }
            _seen.Add(Parse(Encoding.UTF8.GetString(buf, 0, (int)n)));
        }
    }

    internal static KmsgRecord Parse(string record)
    {
        var semi = record.IndexOf(';');
        var pri = int.Parse(record.AsSpan(0, record.IndexOf(',')), CultureInfo.InvariantCulture);
        var end = record.IndexOf('\n', semi);
        var text = record.Substring(semi + 1, (end < 0 ? record.Length : end) - semi - 1);
        var sb = new StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\' && i + 3 < text.Length && text[i + 1] == 'x')
            {
                sb.Append((char)Convert.ToByte(text.Substring(i + 2, 2), 16));
                i += 3;
            }
            else sb.Append(text[i]);
        }
        return new KmsgRecord(pri, sb.ToString());
    }

    public void Dispose() => Close(_fd);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint Read(int fd, byte* buf, nint count);

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static partial long Lseek(int fd, long offset, int whence);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}

/// <summary>Sets net.netfilter.nf_log_all_netns (a global sysctl) and restores the previous value on dispose.</summary>
public sealed class AllNetnsLogging : IDisposable
{
    private const string Path = "/proc/sys/net/netfilter/nf_log_all_netns";
    private readonly string _previous;

    public AllNetnsLogging(bool enabled = true)
    {
        _previous = File.ReadAllText(Path).Trim();
        File.WriteAllText(Path, enabled ? "1" : "0");
    }

    public static void Set(bool enabled) => File.WriteAllText(Path, enabled ? "1" : "0");

    public void Dispose() => File.WriteAllText(Path, _previous);
}
