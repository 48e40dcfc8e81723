using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// One classifier a program was compiled with: the chain it is a rule of, the lowered classifier, where its tables are
/// (<see cref="ClassifierTables.Placement"/>), its words and verdict codes (what its code depends on). Kept with the
/// compilation so that a rule appended to the run can be worked out as table updates without lowering or compiling
/// (<c>Enforcement/ClassifiedRunEdit</c>).
/// </summary>
/// <param name="EndsChain">The classifier is the last rule of a base chain (after lowering).</param>
/// <param name="AfterClassifier">The rule before it (after lowering) is a classifier too: a long run's piece, or a run cut at the field limit.</param>
internal sealed record ClassifierRecord(string Chain, ClassifierVerdict Classifier, ClassifierTables.Placement At, int Words,
    IReadOnlyList<Verdict> VerdictCodes, bool EndsChain, bool AfterClassifier);
