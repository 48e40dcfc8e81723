using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Lowering;

/// <summary>
/// A rewrite of IR into IR between lifting and instruction emission. A pass must preserve what the
/// ruleset does to every packet: verdicts, the order statements run in, and every counter (a counter
/// of a rule a pass removes still exists and reads what nf_tables would show for it).
/// </summary>
public interface ILoweringPass
{
    /// <summary>Short name for logs and errors.</summary>
    string Name { get; }

    Ruleset Run(Ruleset ruleset);
}
