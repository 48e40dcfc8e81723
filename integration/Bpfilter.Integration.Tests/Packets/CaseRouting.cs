using System.Net;

namespace Bpfilter.Integration.Tests.Packets;

/// <summary>
/// `route PREFIX via peer|back [table N]`: a route fw gets for the duration of one case, so that it
/// can forward the answers of a flow to a client prefix (or, in table N, send marked packets out
/// another link). The next hop is peer's or back's address on that link.
/// </summary>
public sealed record CaseRoute(IPAddress Network, int PrefixLength, Origin Via, int? Table)
{
    public bool IsV4 => Network.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;

    public string Prefix => $"{Network}/{PrefixLength}";

    public bool Contains(IPAddress a)
    {
        if (a.AddressFamily != Network.AddressFamily) return false;
        var x = a.GetAddressBytes();
        var n = Network.GetAddressBytes();
        for (int bit = 0; bit < PrefixLength; bit++)
            if (((x[bit / 8] ^ n[bit / 8]) & (0x80 >> (bit % 8))) != 0) return false;
        return true;
    }

    public static CaseRoute Parse(string text)
    {
        // PREFIX via peer|back [table N]
        var w = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (w.Length is not (3 or 5) || w[1] != "via" || (w.Length == 5 && w[3] != "table"))
            throw new FormatException("route PREFIX via peer|back [table N]");
        var slash = w[0].IndexOf('/');
        if (slash < 0 || !IPAddress.TryParse(w[0][..slash], out var net) || !int.TryParse(w[0][(slash + 1)..], out var len) ||
            len < 0 || len > (net.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128))
            throw new FormatException($"route: `{w[0]}` is not ADDRESS/LENGTH");
        var via = w[2] switch
        {
            "peer" => Origin.Peer,
            "back" => Origin.Back,
            _ => throw new FormatException($"route: via `{w[2]}`: peer or back"),
        };
        int? table = null;
        if (w.Length == 5)
        {
            if (!int.TryParse(w[4], out var t) || t < 1 || t > 252) throw new FormatException($"route: table `{w[4]}` (1..252)");
            table = t;
        }
        return new CaseRoute(net, len, via, table);
    }
}

/// <summary>`rule fwmark MARK table N`: a policy routing rule (before the main table) for one case.</summary>
public sealed record CaseRule(uint Mark, int Table)
{
    public static CaseRule Parse(string text)
    {
        var w = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (w.Length != 4 || w[0] != "fwmark" || w[2] != "table") throw new FormatException("rule fwmark MARK table N");
        var m = w[1].StartsWith("0x") ? Convert.ToUInt32(w[1][2..], 16) : uint.Parse(w[1]);
        if (!int.TryParse(w[3], out var t) || t < 1 || t > 252) throw new FormatException($"rule: table `{w[3]}` (1..252)");
        return new CaseRule(m, t);
    }
}
