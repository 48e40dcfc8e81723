using System.Runtime.InteropServices;

namespace Bpfilter.Daemon.Persistence;

/// <summary>
/// The file holding a namespace's committed nf_tables state (<c>DIR/NETNS-INODE.state</c>). Written after
/// every commit, atomically: a temporary file beside it is written and fsynced, renamed over it, and the
/// directory fsynced, so a crash at any point leaves the previous state or the new one, never a mix.
/// The file starts with the namespace's cookie (SO_NETNS_COOKIE, never reused while the system runs): a
/// namespace that got the inode of a deleted one does not restore that one's state (it is moved aside as
/// <c>.stale</c>).
/// <para>
/// Commits that change only set elements, or only rules of existing chains (rule records), are appended to <c>NETNS-INODE.state.journal</c> instead
/// (<see cref="Append"/>: one write() of a few dozen bytes, whatever the size of the sets, into the page cache
/// before the commit is answered, not fsynced: what the daemon suffers (crash, SIGKILL, restart) cannot lose it,
/// and a machine crash, the only thing an fsync guards against, takes the BPF programs with it; see
/// Bpfilter.Daemon/Enforcement/README.md, *Restart*). The journal is fsynced when the store closes (a clean
/// stop). It names the state it follows and is replayed onto it at start. It is started anew by the next full
/// write, which happens when a commit changes more than rules and elements or when the journal grows past the size
/// of the state (so a record costs at most a constant share of a full write).
/// </para>
/// </summary>
internal sealed partial class StateStore(string path, ulong cookie, Action<string> log) : IDisposable
{
    public string Path { get; } = path;

    /// <summary>The journal (element and rule records) that follows the state file.</summary>
    public string JournalPath => Path + ".journal";

    /// <summary>Journal bytes allowed before the next commit writes the whole state instead.</summary>
    const long MinJournalBudget = 1 << 20;

    byte[]? _journalHeader;
    FileStream? _journal;
    long _journalBytes, _journalBudget;

    /// <summary>What <see cref="Read"/> found.</summary>
    public enum Outcome { Missing, Read, Unreadable, OtherNamespace }

    public static StateStore ForNamespace(string dir, Action<string> log)
    {
        Directory.CreateDirectory(dir);
        return new StateStore(System.IO.Path.Combine(dir, $"{NetnsInode.Current()}.state"), NetnsInode.Cookie(), log);
    }

    /// <summary>The file's bytes when it exists and can be read, and the journal's (empty when there is none).</summary>
    public (Outcome, byte[]?, byte[]) Read()
    {
        if (!File.Exists(Path)) return (Outcome.Missing, null, []);
        try
        {
            var bytes = File.ReadAllBytes(Path);
            if (bytes.Length >= 8 && System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(bytes) != cookie)
                return (Outcome.OtherNamespace, null, []);
            var journal = File.Exists(JournalPath) ? File.ReadAllBytes(JournalPath) : [];
            return (Outcome.Read, bytes.Length >= 8 ? bytes[8..] : bytes, journal);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log($"state file {Path} cannot be read: {e.Message}");
            return (Outcome.Unreadable, null, []);
        }
    }

    /// <summary>Moves a state file that cannot be used aside (<c>.corrupt</c>), so the next save does not overwrite the evidence; returns the new name.</summary>
    public string MoveAside(string suffix = ".corrupt")
    {
        var aside = Path + suffix;
        try
        {
            File.Move(Path, aside, overwrite: true);
            if (File.Exists(JournalPath)) File.Move(JournalPath, aside + ".journal", overwrite: true);
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
        // nothing is appended until a state is written again: a journal must follow its state without a gap
        CloseJournal();
        _journalHeader = null;
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
            // the old journal names the old state: removing it is tidiness, not correctness
            File.Delete(JournalPath);
            _journalHeader = Nft.Engine.NfTablesEndpoint.JournalHeader(state);
            _journalBytes = 0;
            _journalBudget = Math.Max(MinJournalBudget, state.Length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log($"saving the state to {Path} failed (a restart would restore the previous one): {e.Message}");
        }
    }

    /// <summary>
    /// Appends one journal record (elements or rules), handed to the kernel (page cache) before this returns but not fsynced;
    /// false when the whole state should be written instead (no state written by this process yet, the journal
    /// past its budget, or the append failed).
    /// </summary>
    public bool Append(byte[] record)
    {
        if (_journalHeader is not { } header || _journalBytes + record.Length > _journalBudget) return false;
        try
        {
            if (_journal == null)
            {
                // unbuffered: every Write is one write(2), in the file once it returns
                _journal = new FileStream(JournalPath, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
                _journal.Write(header);
            }
            _journal.Write(record);
            _journalBytes += record.Length;
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a record cut short stays last (nothing is appended before the next full write): replay ignores it
            log($"appending to the journal {JournalPath} failed, saving the whole state: {e.Message}");
            CloseJournal();
            _journalHeader = null;
            return false;
        }
    }

    void CloseJournal(bool sync = false)
    {
        try
        {
            if (sync) _journal?.Flush(flushToDisk: true);
            _journal?.Dispose();
        }
        catch (IOException)
        {
            // its records were written when appended
        }
        _journal = null;
    }

    /// <summary>A clean stop: the journal is fsynced, so a power loss after it loses nothing either.</summary>
    public void Dispose() => CloseJournal(sync: true);

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
