using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Lowering;

/// <summary>The passes the compiler runs over a ruleset before emitting instructions, in order.</summary>
public sealed class LoweringPipeline
{
    public LoweringPipeline(params ILoweringPass[] passes) => Passes = passes;

    public IReadOnlyList<ILoweringPass> Passes { get; }

    /// <summary>What <see cref="Codegen.ProgramCompiler.Compile"/> runs unless told otherwise.</summary>
    public static LoweringPipeline Default { get; } = new(new UnreachableRules(), new RuleGrouping(), new Classification());

    /// <summary>No passes: the IR is emitted as lifted.</summary>
    public static LoweringPipeline None { get; } = new();

    public Ruleset Run(Ruleset ruleset)
    {
        foreach (var pass in Passes) ruleset = pass.Run(ruleset);
        return ruleset;
    }
}
