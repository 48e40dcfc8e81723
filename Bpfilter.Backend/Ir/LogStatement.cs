namespace Bpfilter.Backend.Ir;

/// <summary>Syslog levels as nf_log numbers them (`log level warn` = 4); Audit is nft's `level audit`.</summary>
public enum LogLevel { Emerg = 0, Alert = 1, Crit = 2, Err = 3, Warn = 4, Notice = 5, Info = 6, Debug = 7, Audit = 8 }

/// <summary>What a log line adds beyond the basic headers, as NF_LOG_* flags.</summary>
[Flags]
public enum LogFlags
{
    None = 0,
    TcpSequence = 0x01,
    TcpOptions = 0x02,
    IpOptions = 0x04,
    SkUid = 0x08,
    /// <summary>NF_LOG_MACDECODE: `flags ether`.</summary>
    Ether = 0x20,
    All = TcpSequence | TcpOptions | IpOptions | SkUid | Ether,
}

/// <summary>
/// Logs the packet, as nft_log: to the kernel log (Level, Flags) or, when Group is set, to an
/// nflog group (Snaplen bytes copied, QueueThreshold packets batched). Every packet passes on.
/// </summary>
public sealed record LogStatement(string? Prefix = null, LogLevel Level = LogLevel.Warn, LogFlags Flags = LogFlags.None,
    ushort? Group = null, uint Snaplen = 0, ushort QueueThreshold = 0) : Statement
{
    public override string ToString()
    {
        var s = "log";
        if (Prefix is not null) s += $" prefix \"{Prefix}\"";
        if (Group is { } g)
        {
            s += $" group {g}";
            if (Snaplen != 0) s += $" snaplen {Snaplen}";
            if (QueueThreshold != 0) s += $" queue-threshold {QueueThreshold}";
            return s;
        }
        if (Level != LogLevel.Warn) s += $" level {Level.ToString().ToLowerInvariant()}";
        if (Flags != LogFlags.None) s += $" flags {Flags}";
        return s;
    }
}
