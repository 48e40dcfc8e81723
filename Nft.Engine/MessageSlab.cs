namespace Nft.Engine;

/// <summary>
/// Rule messages kept in large shared arrays instead of an array each (<see cref="RuleMessagePrefill"/>): the prefill
/// makes them while the backend prepares, and the collections that run meanwhile copied every one of 100,000 small
/// arrays up through the generations; large-object arrays are not copied. A chunk lives while any message in it does.
/// </summary>
internal sealed class MessageSlab
{
    /// <summary>Past the large object threshold (85,000 bytes); at most this much per batch is left unused.</summary>
    const int ChunkSize = 256 << 10;

    byte[]? _chunk;
    int _used;

    /// <summary>A copy of <paramref name="bytes"/> in the current chunk (a new one when it is full; an array of its own when big).</summary>
    public ReadOnlyMemory<byte> Keep(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > ChunkSize / 8) return bytes.ToArray();
        if (_chunk == null || _used + bytes.Length > _chunk.Length)
        {
            _chunk = GC.AllocateUninitializedArray<byte>(ChunkSize);
            _used = 0;
        }
        var kept = _chunk.AsMemory(_used, bytes.Length);
        bytes.CopyTo(_chunk.AsSpan(_used));
        _used += bytes.Length;
        return kept;
    }
}
