namespace Bpfilter.Testing;

/// <summary>
/// A private directory for one test's socket, world-traversable so that setpriv'd clients can
/// reach a socket inside it; removed with everything in it on dispose.
/// </summary>
public sealed class TempSocketDir : IDisposable
{
    public string Path { get; }

    public TempSocketDir()
    {
        Path = System.IO.Path.Combine("/tmp", "bpfd-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
        File.SetUnixFileMode(Path, (UnixFileMode)0x1ed); // 0755
    }

    public string Socket(string name = "bpfilterd.sock") => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
