using System.Buffers.Binary;

namespace Bpfilter.Fuzz;

/// <summary>
/// How one engine input holds several sends of nft, so the fuzzer can build state (a table, then a chain
/// in it, then a rule): each request is a u16 little-endian length and that many bytes; a length past
/// the end takes what is left. A short form keeps seeds small, which is what AFL mutates best.
/// </summary>
public static class RequestSequence
{
    public static List<byte[]> Split(ReadOnlySpan<byte> input)
    {
        var requests = new List<byte[]>();
        while (input.Length >= 2)
        {
            int len = Math.Min(BinaryPrimitives.ReadUInt16LittleEndian(input), input.Length - 2);
            requests.Add(input.Slice(2, len).ToArray());
            input = input[(2 + len)..];
        }
        return requests;
    }

    public static byte[] Join(IEnumerable<byte[]> requests)
    {
        var ms = new MemoryStream();
        Span<byte> len = stackalloc byte[2];
        foreach (var r in requests)
        {
            if (r.Length > ushort.MaxValue) throw new ArgumentException($"request of {r.Length} bytes does not fit a u16 length");
            BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)r.Length);
            ms.Write(len);
            ms.Write(r);
        }
        return ms.ToArray();
    }
}
