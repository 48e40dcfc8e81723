using Bpfilter.Backend.Ir;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter;

/// <summary>nft's `log` expression as an IR <see cref="LogStatement"/>: kernel-log output only.</summary>
public static class LogStatements
{
    /// <summary>NF_LOG_MASK: the flag bits nf_log_syslog knows.</summary>
    const uint KnownFlags = 0x2f;

    public static LogStatement Lift(LogExpr l, Func<string, Exception> refuse)
    {
        // nflog groups go to user space through nfnetlink_log, which BPF cannot feed; `level audit` goes to the audit log.
        if (l.Group != null) throw refuse("expression 'log' to an nflog group (log group) is not supported by bpfilter-nft");
        var level = l.Level ?? (uint)LogLevel.Warn;
        if (level > (uint)LogLevel.Debug) throw refuse("expression 'log' with level audit is not supported by bpfilter-nft");
        var flags = l.Flags ?? 0;
        if ((flags & ~KnownFlags) != 0) throw refuse($"expression 'log' with flags 0x{flags:x} is not supported by bpfilter-nft");
        if (l.Prefix is { Length: > 127 }) throw refuse("expression 'log' with a prefix longer than 127 bytes is not supported by bpfilter-nft");
        return new LogStatement(l.Prefix, (LogLevel)level, (LogFlags)flags);
    }
}
