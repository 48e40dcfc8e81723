using System.Text;
using Bpfilter.Daemon.Enforcement;

namespace Bpfilter.Daemon;

/// <summary>
/// `bpfilterd explain`: for each attach point, where it is attached (hook, link id, program ids) and
/// the base chains compiled into it; then every rule's nf_tables expressions with the matchers the
/// lifter made of them; then each program's BPF instructions.
/// </summary>
public static class ExplainReport
{
    public static string Build(EnforcingBackend? backend)
    {
        if (backend == null) return "bpfilterd runs with --no-enforce: nothing is compiled or attached\n";
        var sb = new StringBuilder();
        var attachments = backend.Attachments();
        sb.Append(backend.BpfOnly ? "== placement (bpf-only) ==\n" : "== placement ==\n");
        var placements = backend.Placements();
        if (placements.Count == 0) sb.Append("(no base chain)\n");
        foreach (var p in placements) sb.Append(p).Append('\n');
        // a chain held for its limits moves without waiting for a commit, once they could be known full
        if (backend.HoldRecheckInMs() is { } recheck)
            sb.Append($"(chains held in the kernel for their limits are re-checked in {recheck} ms)\n");
        // a move to the kernel cannot wait for a full bucket, nor hide that it was not
        if (backend.LimitNotes() is { Count: > 0 } limits)
        {
            sb.Append("\n== limits moved to the kernel with a bucket BPF had not full ==\n");
            foreach (var l in limits) sb.Append(l).Append('\n');
        }
        sb.Append("\n== attach points ==\n");
        if (attachments.Count == 0) sb.Append("(none: no base chain is enforced)\n");
        foreach (var a in attachments)
        {
            sb.Append($"{a.Hook}\n");
            sb.Append(a.ViaDispatcher
                ? $"  link id {a.LinkId}, dispatcher program id {a.AttachedProgramId} tail-calls program id {a.ProgramId} ({a.InstructionCount} instructions)\n"
                : $"  link id {a.LinkId}, program id {a.ProgramId} ({a.InstructionCount} instructions)\n");
            foreach (var c in a.Chains) sb.Append($"  chain {c}\n");
        }
        sb.Append("\n== rules (nf_tables expressions => lifted matchers) ==\n");
        sb.Append(backend.LiftListing() ?? "(no ruleset committed)\n");
        foreach (var a in attachments)
        {
            sb.Append($"\n== program id {a.ProgramId} at {a.Hook} ==\n");
            sb.Append(a.Disassembly);
            if (!a.Disassembly.EndsWith('\n')) sb.Append('\n');
        }
        return sb.ToString();
    }
}
