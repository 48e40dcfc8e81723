using System.Text;

namespace Nft.Bytecode.Objects;

/// <summary>
/// nft's user data TLVs (libnftnl udata: u8 type, u8 length, value) carried opaquely by the kernel
/// in NFTA_*_USERDATA. Only reading is offered; the bytes themselves are what round-trips.
/// </summary>
public static class UserData
{
    /// <summary>NFTNL_UDATA_RULE_COMMENT / NFTNL_UDATA_SET_COMMENT / ..._ELEM_COMMENT share type 0 for rules; sets use 2, elements 0.</summary>
    public const byte RuleComment = 0;
    public const byte SetElemComment = 0;
    public const byte SetComment = 2;
    public const byte TableComment = 0;
    public const byte ChainComment = 0;

    /// <summary>Enumerates (type, value) pairs; stops at the first malformed TLV.</summary>
    public static IEnumerable<(byte Type, byte[] Value)> Tlvs(byte[]? data)
    {
        if (data is null) yield break;
        int i = 0;
        while (i + 2 <= data.Length)
        {
            byte type = data[i], len = data[i + 1];
            if (i + 2 + len > data.Length) yield break;
            yield return (type, data.AsSpan(i + 2, len).ToArray());
            i += 2 + len;
        }
    }

    /// <summary>The NUL-terminated string stored under <paramref name="type"/>, if any.</summary>
    public static string? String(byte[]? data, byte type)
    {
        foreach (var (t, v) in Tlvs(data))
        {
            if (t != type) continue;
            int n = Array.IndexOf(v, (byte)0);
            return Encoding.UTF8.GetString(v, 0, n >= 0 ? n : v.Length);
        }
        return null;
    }

    public static string? Comment(byte[]? data) => String(data, RuleComment);

    /// <summary>Builds a udata blob with one comment TLV, as nft writes it (string plus NUL).</summary>
    public static byte[] WithComment(string comment, byte type = RuleComment)
    {
        var s = Encoding.UTF8.GetBytes(comment);
        if (s.Length + 1 > byte.MaxValue) throw new ArgumentException("comment too long", nameof(comment));
        var b = new byte[2 + s.Length + 1];
        b[0] = type;
        b[1] = (byte)(s.Length + 1);
        s.CopyTo(b, 2);
        return b;
    }
}
