using System.Runtime.InteropServices;

namespace Bpfilter.Daemon.Persistence;

/// <summary>
/// The file holding a namespace's committed nf_tables state (<c>DIR/NETNS-INODE.state</c>). Written after
/// every commit, atomically: a temporary file beside it is written and fsynced, renamed over it, and the
/// directory fsynced, so a crash at any point leaves the previous state or the new one, never a mix.
/// The file starts with the namespace's cookie (SO_NETNS_COOKIE, never reused while the system runs): a
/// namespace that got the inode of a deleted one does not restore that one's state (it is moved aside as
/// <c>.stale</c>).
/// </summary>
internal sealed partial class StateStore(string path, ulong cookie, Action<string> log)
{
    public string Path { get; } = path;

    /// <summary>What <see cref="Read"/> found.</summary>
    public enum Outcome { Missing, Read, Unreadable, OtherNamespace }

    public static StateStore ForNamespace(string dir, Action<string> log)
    {
        Directory.CreateDirectory(dir);
        return new StateStore(System.IO.Path.Combine(dir, $"{NetnsInode.Current()}.state"), NetnsInode.Cookie(), log);
    }

    /// <summary>The file's bytes when it exists and can be read.</summary>
    public (Outcome, byte[]?) Read()
    {
        if (!File.Exists(Path)) return (Outcome.Missing, null);
        try
        {
            var bytes = File.ReadAllBytes(Path);
            if (bytes.Length >= 8 && System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(bytes) != cookie)
                return (Outcome.OtherNamespace, null);
            return (Outcome.Read, bytes.Length >= 8 ? bytes[8..] : bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log($"state file {Path} cannot be read: {e.Message}");
            return (Outcome.Unreadable, null);
        }
    }

    /// <summary>Moves a state file that cannot be used aside (<c>.corrupt</c>), so the next save does not overwrite the evidence; returns the new name.</summary>
    public string MoveAside(string suffix = ".corrupt")
    {
        var aside = Path + suffix;
        try
        {
            File.Move(Path, aside, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log($"cannot move the bad state file {Path} aside: {e.Message}");
        }
        return aside;
    }

    /// <summary>Replaces the file with <paramref name="state"/> atomically. Failures are logged: enforcement goes on, a restart would find the previous state.</summary>
    public void Write(byte[] state)
    {
        var tmp = Path + ".tmp";
        try
        {
            using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                Span<byte> head = stackalloc byte[8];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(head, cookie);
                f.Write(head);
                f.Write(state);
                f.Flush(flushToDisk: true);
            }
            File.Move(tmp, Path, overwrite: true);
            SyncDirectory(System.IO.Path.GetDirectoryName(Path)!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log($"saving the state to {Path} failed (a restart would restore the previous one): {e.Message}");
        }
    }

    static void SyncDirectory(string dir)
    {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return;
        fsync(fd);
        close(fd);
    }

    const int O_RDONLY = 0, O_DIRECTORY = 0x10000, O_CLOEXEC = 0x80000;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
