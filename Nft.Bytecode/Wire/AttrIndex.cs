using System.Runtime.CompilerServices;

namespace Nft.Bytecode.Wire;

/// <summary>
/// Where the first <see cref="Max"/> attributes of a nest start and their raw types, taken in the one walk that counts
/// them: a getter then finds the last of a type among these instead of walking the nest's bytes again (every expression
/// of every rule is a nest, asked for each of its attributes and again for its layout).
/// </summary>
[InlineArray(Max)]
internal struct AttrStarts
{
    public const int Max = 8;
    int _start;
}

/// <summary>The raw types beside <see cref="AttrStarts"/>.</summary>
[InlineArray(AttrStarts.Max)]
internal struct AttrRaws
{
    ushort _raw;
}
