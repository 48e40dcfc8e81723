namespace Nft.Bytecode.Tests;

/// <summary>One captured nf_tables message: who sent it, the command it belongs to, and its bytes.</summary>
public sealed record TranscriptMessage(string File, int Line, bool FromKernel, string Command, byte[] Bytes);

/// <summary>Reads the transcript files written by Transcripts/regenerate.py.</summary>
public static class Transcript
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "Transcripts");

    public static IEnumerable<string> Files() =>
        System.IO.Directory.GetFiles(Directory, "*.txt").OrderBy(f => f, StringComparer.Ordinal);

    public static IEnumerable<TranscriptMessage> Read(string path)
    {
        string command = "";
        int n = 0;
        foreach (var line in File.ReadLines(path))
        {
            n++;
            if (line.StartsWith("# nft ", StringComparison.Ordinal)) { command = line[2..]; continue; }
            if (line.Length < 3 || (line[0] != '>' && line[0] != '<')) continue;
            yield return new TranscriptMessage(Path.GetFileName(path), n, line[0] == '<', command, Convert.FromHexString(line[2..]));
        }
    }

    public static IEnumerable<TranscriptMessage> All() => Files().SelectMany(Read);
}
