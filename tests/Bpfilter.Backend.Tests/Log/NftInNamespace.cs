using System.Diagnostics;

namespace Bpfilter.Backend.Tests.Log;

/// <summary>Runs the system's nft (the kernel's nf_tables, the oracle) inside a test namespace.</summary>
public static class NftInNamespace
{
    public static void Apply(string ns, string ruleset)
    {
        var psi = new ProcessStartInfo("ip", $"netns exec {ns} nft -f -") { RedirectStandardInput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        p.StandardInput.Write(ruleset);
        p.StandardInput.Close();
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"nft failed: {err}\n{ruleset}");
    }
}
