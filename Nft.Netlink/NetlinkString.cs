using System.Text;

namespace Nft.Netlink;

/// <summary>
/// The text of an NLA_STRING. Bytes that are not UTF-8 are refused with EINVAL: names are held as
/// strings, and a lossy decode would answer with a different, possibly longer, name than the one sent
/// (found by fuzzing: a 15-byte device name came back as 27 bytes, past IFNAMSIZ).
/// </summary>
public static class NetlinkString
{
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <param name="offset">the attribute's offset, blamed in the extack; -1 for none</param>
    public static string Decode(ReadOnlySpan<byte> bytes, int offset = -1, ushort type = 0)
    {
        if (bytes.Length <= SharedMaxLength && Shared(bytes) is { } shared) return shared;
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new NetlinkException(Errno.EINVAL, $"attribute {type}: string is not valid UTF-8", offset);
        }
    }

    /// <summary>Longest name shared: table, chain, set and expression names (NFT_NAME_MAXLEN is 256, most are short).</summary>
    const int SharedMaxLength = 32;

    /// <summary>Distinct names kept at most (what arrives is untrusted): past it, names are decoded each time.</summary>
    const int SharedCapacity = 4096;

    static readonly Dictionary<string, string> Names = [];
    static readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> NamesBySpan = Names.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>
    /// One string per short ASCII name: a batch of 10,000 rules names its table, its chain and each expression's
    /// kind in every rule, and decoding each anew was a string per attribute. Null when not ASCII (decoded strictly).
    /// </summary>
    static string? Shared(ReadOnlySpan<byte> bytes)
    {
        Span<char> chars = stackalloc char[SharedMaxLength];
        if (Ascii.ToUtf16(bytes, chars, out int n) != System.Buffers.OperationStatus.Done) return null;
        var name = chars[..n];
        lock (Names)
        {
            if (NamesBySpan.TryGetValue(name, out var s)) return s;
            s = new string(name);
            if (Names.Count < SharedCapacity) Names[s] = s;
            return s;
        }
    }
}
