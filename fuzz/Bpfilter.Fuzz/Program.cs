using Bpfilter.Fuzz;
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

// bpfilter-fuzz afl TARGET               run under afl-fuzz (SharpFuzz's fork server; once without AFL)
// bpfilter-fuzz seeds TRANSCRIPTS OUTDIR  write the seeds of every target to OUTDIR/TARGET/
// bpfilter-fuzz replay TARGET PATH...     run files (or every file of directories); exit 1 on any crash
if (args.Length >= 2 && args[0] == "afl")
{
    var target = FuzzTargets.Named(args[1]);
    SharpFuzz.Fuzzer.Run(stream =>
    {
        using var ms = new MemoryStream();
        stream.CopyTo(ms);
        target.Run(ms.GetBuffer().AsSpan(0, (int)ms.Length));
    });
    return 0;
}
if (args.Length == 3 && args[0] == "seeds")
{
    int n = 0;
    foreach (var s in Seeds.FromTranscripts(args[1]))
    {
        var dir = Path.Combine(args[2], s.Target);
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, s.Name), s.Bytes);
        n++;
    }
    Console.WriteLine($"{n} seeds written to {args[2]}");
    return 0;
}
if (args.Length >= 3 && args[0] == "replay")
{
    var target = FuzzTargets.Named(args[1]);
    var files = args[2..].SelectMany(p => Directory.Exists(p) ? Directory.GetFiles(p).Order(StringComparer.Ordinal) : (IEnumerable<string>)[p]).ToList();
    int crashes = 0;
    foreach (var f in files)
    {
        var problem = Replay.Run(target, File.ReadAllBytes(f));
        if (problem == null) continue;
        crashes++;
        Console.WriteLine($"CRASH {f}: {problem}");
    }
    Console.WriteLine($"{target.Name}: {files.Count} inputs, {crashes} crashes");
    return crashes == 0 ? 0 : 1;
}
Console.Error.WriteLine("usage: bpfilter-fuzz afl TARGET | seeds TRANSCRIPTS OUTDIR | replay TARGET PATH...");
return 2;
