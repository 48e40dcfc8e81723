namespace Bpfilter.Backend.Log;

/// <summary>NF_LOG_* flag bits of struct nf_loginfo (nft `log flags ...`).</summary>
[Flags]
public enum NfLogFlags : uint
{
    None = 0,
    TcpSequence = 0x01,
    TcpOptions = 0x02,
    IpOptions = 0x04,
    Uid = 0x08,
    /// <summary>NF_LOG_MACDECODE, nft `log flags ether`.</summary>
    MacDecode = 0x20,
    /// <summary>nft `log flags all` (NF_LOG_MASK).</summary>
    All = 0x2f,
}

/// <summary>
/// What one log statement says: its prefix (printed verbatim, nft adds no separator), its syslog
/// level (0 emerg .. 7 debug; nft's default is 4, warn) and its flags. The BPF record names it by
/// <see cref="LogEvent.ConfigId"/>.
/// </summary>
public sealed record LogConfig(string Prefix, int Level = LogConfig.DefaultLevel, NfLogFlags Flags = NfLogFlags.None)
{
    public const int DefaultLevel = 4;
    /// <summary>NF_LOG_PREFIXLEN: the kernel keeps at most 127 bytes of prefix.</summary>
    public const int MaxPrefixLength = 127;

    public string Prefix { get; } = Prefix.Length <= MaxPrefixLength
        ? Prefix : throw new ArgumentException($"log prefix longer than {MaxPrefixLength} bytes");

    public int Level { get; } = Level is >= 0 and <= 7 ? Level : throw new ArgumentOutOfRangeException(nameof(Level), "syslog levels are 0..7");
}
