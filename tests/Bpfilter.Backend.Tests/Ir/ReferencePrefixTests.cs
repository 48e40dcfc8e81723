using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Tests.Ir;

/// <summary>
/// <see cref="ReferencePrefix.StartsWith{T}"/> holds only when the kept objects themselves start the list: an equal
/// but new object (a replaced rule) or a list that shrank must fold the chain again.
/// </summary>
public sealed class ReferencePrefixTests
{
    sealed record Item(int N);

    [Fact]
    public void OnlyTheSameObjectsInTheSameOrderStartTheList()
    {
        var (a, b, c) = (new Item(1), new Item(2), new Item(3));
        Assert.True(ReferencePrefix.StartsWith<Item>([a, b, c], []));
        Assert.True(ReferencePrefix.StartsWith<Item>([a, b, c], [a, b]));
        Assert.True(ReferencePrefix.StartsWith<Item>([a, b], [a, b]));
        Assert.False(ReferencePrefix.StartsWith<Item>([a], [a, b]));
        Assert.False(ReferencePrefix.StartsWith<Item>([b, a, c], [a, b]));
        // equal by value, not the same rule object: something before the appended rules was replaced
        Assert.False(ReferencePrefix.StartsWith<Item>([a, new Item(2), c], [a, b]));
    }
}
