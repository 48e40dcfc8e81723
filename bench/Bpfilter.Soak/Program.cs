using Bpfilter.Soak;
using Bpfilter.Testing;

// bpfilter-soak [--minutes N | --seconds N] [--seed S] [--no-restarts] [--kernel-placed]
var duration = TimeSpan.FromMinutes(10);
var seed = Environment.TickCount;
bool restarts = true, kernelPlaced = false;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--minutes" when i + 1 < args.Length: duration = TimeSpan.FromMinutes(double.Parse(args[++i])); break;
        case "--seconds" when i + 1 < args.Length: duration = TimeSpan.FromSeconds(double.Parse(args[++i])); break;
        case "--seed" when i + 1 < args.Length: seed = int.Parse(args[++i]); break;
        case "--no-restarts": restarts = false; break;
        case "--kernel-placed": kernelPlaced = true; break;
        default:
            Console.Error.WriteLine("usage: bpfilter-soak [--minutes N | --seconds N] [--seed S] [--no-restarts] [--kernel-placed]");
            return 2;
    }
}
if (RepoPaths.MissingReason() is { Length: > 0 } missing)
{
    Console.Error.WriteLine(missing);
    return 1;
}
Console.WriteLine($"soak: {duration.TotalMinutes:0.##} minutes, seed {seed}, restarts {(restarts ? "on" : "off")}, kernel-placed rules {(kernelPlaced ? "on" : "off")}");
var result = new SoakRun(new SoakOptions(duration, seed, restarts, kernelPlaced), Console.Out).Run();
Console.WriteLine(result.SummaryLine);
return result.Failure == null ? 0 : 1;
