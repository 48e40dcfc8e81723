namespace Bpfilter.Fuzz;

/// <summary>
/// A small deterministic mutator (AFL's havoc stages in miniature: bit flips, interesting values,
/// byte runs, cuts, inserts, splices) for the bounded slice CI runs without AFL. Same seed, same inputs.
/// </summary>
public sealed class Mutator(int seed)
{
    static readonly byte[] Interesting8 = [0, 1, 0x7f, 0x80, 0xff, 4, 8, 16, 0x10, 0x0a];
    static readonly int[] Interesting32 = [0, 1, -1, 4, 8, 16, 0x7fff, 0xffff, 0x10000, int.MaxValue, int.MinValue, 0x8000];
    readonly Random _rng = new(seed);

    public byte[] Mutate(byte[] input, IReadOnlyList<byte[]> pool)
    {
        var b = new List<byte>(input);
        int rounds = 1 << _rng.Next(0, 4);
        for (int i = 0; i < rounds; i++) Step(b, pool);
        return [.. b];
    }

    void Step(List<byte> b, IReadOnlyList<byte[]> pool)
    {
        if (b.Count == 0) { b.Add((byte)_rng.Next(256)); return; }
        int at = _rng.Next(b.Count);
        switch (_rng.Next(8))
        {
            case 0: b[at] ^= (byte)(1 << _rng.Next(8)); break;
            case 1: b[at] = Interesting8[_rng.Next(Interesting8.Length)]; break;
            case 2:
                if (b.Count - at >= 4)
                {
                    var v = BitConverter.GetBytes(Interesting32[_rng.Next(Interesting32.Length)]);
                    if (_rng.Next(2) == 0) Array.Reverse(v); // netlink lengths are host order, payloads often network order
                    for (int k = 0; k < 4; k++) b[at + k] = v[k];
                }
                break;
            case 3: b[at] = (byte)(b[at] + _rng.Next(-16, 17)); break;
            case 4: b.RemoveRange(at, Math.Min(b.Count - at, 1 + _rng.Next(16))); break;
            case 5: b.InsertRange(at, Enumerable.Repeat((byte)_rng.Next(256), 1 + _rng.Next(8))); break;
            case 6: // copy a run of the input over another place, as AFL's block clone does
                {
                    int from = _rng.Next(b.Count), len = Math.Min(1 + _rng.Next(32), b.Count - from);
                    b.InsertRange(at, b.GetRange(from, len));
                    break;
                }
            default: // splice: the tail of another pool member
                {
                    var other = pool[_rng.Next(pool.Count)];
                    if (other.Length == 0) break;
                    int from = _rng.Next(other.Length);
                    b.RemoveRange(at, b.Count - at);
                    b.AddRange(other.AsSpan(from).ToArray());
                    break;
                }
        }
    }
}
