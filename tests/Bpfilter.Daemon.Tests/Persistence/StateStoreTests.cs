using Bpfilter.Daemon.Persistence;

namespace Bpfilter.Daemon.Tests.Persistence;

/// <summary>
/// The journal (element and rule records) is not fsynced (Bpfilter.Daemon/Enforcement/README.md, *Restart*): what makes a commit
/// survive a daemon crash is that its record is in the file, through write(2), before the commit is answered.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class StateStoreTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("bfstate-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void AnAppendedRecordIsInTheJournalFileWhenAppendReturns()
    {
        var log = new List<string>();
        using var store = new StateStore(Path.Combine(_dir, "1.state"), 42, log.Add);
        var state = new Nft.Engine.NfTablesEndpoint().ExportState();
        Assert.False(store.Append([1, 2, 3])); // nothing written by this process yet: the whole state is saved instead
        store.Write(state);
        Assert.False(File.Exists(store.JournalPath));

        byte[] first = [10, 11, 12, 13], second = [20, 21];
        Assert.True(store.Append(first));
        // read by another process, as a daemon restarted after SIGKILL would: no buffer of this process holds it
        var header = Nft.Engine.NfTablesEndpoint.JournalHeader(state);
        Assert.Equal([.. header, .. first], ReadElsewhere(store.JournalPath));
        Assert.True(store.Append(second));
        Assert.Equal([.. header, .. first, .. second], ReadElsewhere(store.JournalPath));

        // the journal follows its state: a full write starts anew
        store.Write(state);
        Assert.False(File.Exists(store.JournalPath));
        Assert.Empty(log);
    }

    /// <summary>
    /// Compaction: records are taken until the journal would pass its budget (the state's size, at least 1 MiB);
    /// then Append refuses, the caller writes the whole state, and the journal starts anew after it.
    /// </summary>
    [Fact]
    public void TheJournalIsCompactedIntoAFullWriteOnceItWouldPassItsBudget()
    {
        var log = new List<string>();
        using var store = new StateStore(Path.Combine(_dir, "2.state"), 42, log.Add);
        var state = new Nft.Engine.NfTablesEndpoint().ExportState();
        store.Write(state);
        var record = new byte[300 * 1024];
        int taken = 0;
        while (store.Append(record)) taken++;
        Assert.Equal(3, taken); // 1 MiB / 300 KiB
        Assert.Equal(16 + 3 * record.Length, new FileInfo(store.JournalPath).Length);
        store.Write(state);
        Assert.False(File.Exists(store.JournalPath));
        Assert.True(store.Append(record));
        Assert.Empty(log);
    }

    static byte[] ReadElsewhere(string path)
    {
        var r = ProcessRunner.Run("base64", ["-w0", path]);
        Assert.True(r.Exit == 0, r.ToString());
        return Convert.FromBase64String(r.Stdout.Trim());
    }
}
