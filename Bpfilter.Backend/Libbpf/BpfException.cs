namespace Bpfilter.Backend.Libbpf;

/// <summary>A failed bpf(2)/libbpf call: which operation and the errno.</summary>
public class BpfException(string operation, int errno, string? detail = null)
    : Exception($"{operation}: {ErrnoName(errno)}{(detail is null ? "" : ": " + detail)}")
{
    public string Operation { get; } = operation;
    public int Errno { get; } = errno;

    internal static int Check(string operation, int rc, string? detail = null) =>
        rc < 0 ? throw new BpfException(operation, -rc, detail) : rc;

    internal static string ErrnoName(int errno) => errno switch
    {
        1 => "EPERM", 2 => "ENOENT", 7 => "E2BIG", 9 => "EBADF", 12 => "ENOMEM", 13 => "EACCES", 14 => "EFAULT",
        16 => "EBUSY", 17 => "EEXIST", 19 => "ENODEV", 22 => "EINVAL", 28 => "ENOSPC", 95 => "EOPNOTSUPP",
        524 => "ENOTSUPP", _ => $"errno {errno}",
    } + $" ({errno})";
}

/// <summary>The verifier rejected a program; <see cref="Log"/> holds the whole verifier log.</summary>
public sealed class BpfVerifierException(string program, int errno, string log)
    : BpfException($"loading program '{program}'", errno, LastLines(log))
{
    public string Log { get; } = log;

    /// <summary>
    /// The verifier's reason in one line: the last line of its log that is neither an instruction it was at
    /// ("123: (2d) if r2 > r8 goto ...") nor its closing statistics ("processed N insns ...").
    /// </summary>
    public string Reason { get; } = ReasonOf(log, errno);

    private static string ReasonOf(string log, int errno)
    {
        foreach (var line in log.TrimEnd('\n', '\0').Split('\n').Reverse())
        {
            var l = line.Trim();
            if (l.Length == 0 || l.StartsWith("processed ", StringComparison.Ordinal) || l.StartsWith("verification time", StringComparison.Ordinal)
                || l.StartsWith("stack depth", StringComparison.Ordinal) || IsInstruction(l)) continue;
            return l;
        }
        return $"{ErrnoName(errno)} without a verifier log";
    }

    /// <summary>"N: (op) ...": an instruction the verifier printed.</summary>
    private static bool IsInstruction(string l)
    {
        var colon = l.IndexOf(": (", StringComparison.Ordinal);
        return colon > 0 && l[..colon].All(char.IsAsciiDigit);
    }

    private static string LastLines(string log)
    {
        var lines = log.TrimEnd('\n', '\0').Split('\n');
        return string.Join("\n", lines.Skip(Math.Max(0, lines.Length - 3)));
    }
}
