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
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new NetlinkException(Errno.EINVAL, $"attribute {type}: string is not valid UTF-8", offset);
        }
    }
}
