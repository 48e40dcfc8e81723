using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// LoadedProgram.Digest names a program's pin directory, which a restart finds again by recompiling: the code's share is
/// kept per instruction array (CodeDigest), and must be what digesting the same code afresh gives, never another array's.
/// </summary>
public class ProgramDigestTests
{
    static CompiledProgram Compile(int rules)
    {
        var chain = new BaseChain("t/base", Xdp, 0, Verdict.Drop, Enumerable.Range(0, rules).Select(ChainTailTests.Classified).ToValueList());
        var rs = new Ruleset(ValueList.Of(chain), ValueList<Chain>.Empty, ValueList<Backend.Ir.Set>.Empty);
        return ProgramCompiler.Compile(rs, rs.BaseChains.Items);
    }

    [Fact]
    public void TheDigestOfCodeDigestedBeforeIsTheDigestOfTheSameCodeAfresh()
    {
        var c = Compile(40);
        var first = LoadedProgram.Digest(c);
        Assert.Equal(first, LoadedProgram.Digest(c));
        Assert.Equal(first, LoadedProgram.Digest(c with { Instructions = [.. c.Instructions] }));

        // another program's code in this record (an edit's `with`): that code's digest, not the one kept for this record's
        var other = Compile(3);
        Assert.NotEqual(c.Disassembly, other.Disassembly);
        var swapped = c with { Instructions = other.Instructions };
        Assert.NotEqual(first, LoadedProgram.Digest(swapped));
        Assert.Equal(LoadedProgram.Digest(swapped with { Instructions = [.. other.Instructions] }), LoadedProgram.Digest(swapped));

        // the same code under another name or type, or with a tail in its slot, is another program
        Assert.NotEqual(first, LoadedProgram.Digest(c with { Name = c.Name + "x" }));
        Assert.NotEqual(first, LoadedProgram.Digest(c with { ProgramType = Backend.Libbpf.BpfProgType.SchedCls }));
        Assert.NotEqual(first, LoadedProgram.Digest(c with { Tail = c.Tail! with { Rules = 1, Code = other.Instructions } }));
    }
}
