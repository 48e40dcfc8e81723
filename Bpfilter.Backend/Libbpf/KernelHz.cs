using System.IO.Compression;

namespace Bpfilter.Backend.Libbpf;

/// <summary>
/// The running kernel's CONFIG_HZ (jiffies per second), from /proc/config.gz or /boot/config-$(uname -r);
/// null when neither says. `ct expiration` and set timeouts (<see cref="KernelClock"/>) need it to turn jiffies into
/// milliseconds as jiffies_to_msecs does.
/// </summary>
public static class KernelHz
{
    private static readonly Lazy<int?> Value = new(Read);

    public static int? Hz => Value.Value;

    /// <summary>Milliseconds per jiffy (1000 / HZ), or null when HZ is unknown or does not divide 1000.</summary>
    public static int? TickMs => Hz is int hz && 1000 % hz == 0 ? 1000 / hz : null;

    private static int? Read()
    {
        try
        {
            if (File.Exists("/proc/config.gz"))
            {
                using var gz = new GZipStream(File.OpenRead("/proc/config.gz"), CompressionMode.Decompress);
                using var reader = new StreamReader(gz);
                if (Parse(reader) is { } hz) return hz;
            }
            var release = File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
            var boot = $"/boot/config-{release}";
            if (File.Exists(boot))
            {
                using var reader = new StreamReader(boot);
                return Parse(reader);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
        }
        return null;
    }

    /// <summary>The value of the CONFIG_HZ= line of a kernel config, if it is a positive number.</summary>
    public static int? Parse(TextReader config)
    {
        while (config.ReadLine() is { } line)
            if (line.StartsWith("CONFIG_HZ=", StringComparison.Ordinal))
                return int.TryParse(line.AsSpan("CONFIG_HZ=".Length), out var hz) && hz > 0 ? hz : null;
        return null;
    }
}
