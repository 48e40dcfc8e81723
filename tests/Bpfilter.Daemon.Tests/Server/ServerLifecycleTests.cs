using Bpfilter.Daemon.Server;

namespace Bpfilter.Daemon.Tests.Server;

/// <summary>Socket file creation, permissions, stale files and shutdown.</summary>
public partial class ServerLifecycleTests
{
    static readonly ScriptedEndpoint Nothing = new((_, _) => []);

    [Fact]
    public async Task CreatesDirectoryAndSocketWithModeAndRemovesItOnStop()
    {
        using var dir = new TempSocketDir();
        var path = Path.Combine(dir.Path, "sub", "d.sock");
        var server = new DaemonServer(Nothing, path);
        server.Start();
        Assert.Equal(LibCTypes.Socket, FileTypeOf(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        await server.DisposeAsync();
        Assert.False(File.Exists(path));
        Assert.True(Directory.Exists(Path.Combine(dir.Path, "sub")));
    }

    [Fact]
    public async Task StaleSocketFileIsReplaced()
    {
        using var dir = new TempSocketDir();
        var path = dir.Socket();
        DeadSocket.Leave(path);
        Assert.True(File.Exists(path));
        await using var server = new DaemonServer(Nothing, path);
        server.Start();
        using var c = new FrameClient(path);
        Assert.Empty(c.Call(1, [1, 2, 3]));
    }

    [Fact]
    public async Task LiveDaemonIsNotReplaced()
    {
        using var dir = new TempSocketDir();
        await using var first = new DaemonServer(Nothing, dir.Socket());
        first.Start();
        var second = new DaemonServer(Nothing, dir.Socket());
        var e = Assert.Throws<IOException>(second.Start);
        Assert.Contains("another daemon", e.Message);
        using var c = new FrameClient(dir.Socket());
        Assert.Empty(c.Call(1, [1]));
    }

    [Fact]
    public void NonSocketFileIsNeverDeleted()
    {
        using var dir = new TempSocketDir();
        var path = dir.Socket();
        File.WriteAllText(path, "precious");
        var server = new DaemonServer(Nothing, path);
        Assert.Throws<IOException>(server.Start);
        Assert.Equal("precious", File.ReadAllText(path));
    }

    [Theory]
    [InlineData(new[] { "--socket", "/x/y.sock", "--socket-mode", "0666", "--foreground" }, "/x/y.sock", 0x1b6)]
    [InlineData(new string[0], DaemonServer.DefaultSocketPath, 0x180)]
    public void OptionsParse(string[] args, string path, int mode)
    {
        var o = Options.Parse(args, out var error);
        Assert.NotNull(o);
        Assert.Equal("", error);
        Assert.Equal(path, o.SocketPath);
        Assert.Equal((UnixFileMode)mode, o.SocketMode);
    }

    [Theory]
    [InlineData("--socket")]
    [InlineData("--socket-mode", "0968")]
    [InlineData("--socket-mode", "4755")]
    [InlineData("--bogus")]
    public void BadOptionsAreRefused(params string[] args)
    {
        Assert.Null(Options.Parse(args, out var error));
        Assert.NotEqual("", error);
    }

    [Fact]
    public void ChainTailsAreOnUnlessTurnedOff()
    {
        Assert.True(Options.Parse([], out _)!.ChainTails);
        Assert.False(Options.Parse(["--no-chain-tails"], out _)!.ChainTails);
        Assert.Null(Options.Parse(["--chain-tails"], out _));
    }

    /// <summary>Binds a socket to path and closes it without unlinking, as a crashed daemon leaves it.</summary>
    static unsafe partial class DeadSocket
    {
        [System.Runtime.InteropServices.LibraryImport("libc")] private static partial int socket(int d, int t, int p);
        [System.Runtime.InteropServices.LibraryImport("libc")] private static partial int bind(int fd, byte* addr, int len);
        [System.Runtime.InteropServices.LibraryImport("libc")] private static partial int close(int fd);

        public static void Leave(string path)
        {
            byte* sun = stackalloc byte[110];
            new Span<byte>(sun, 110).Clear();
            sun[0] = 1; // AF_UNIX
            System.Text.Encoding.UTF8.GetBytes(path, new Span<byte>(sun + 2, 107));
            int fd = socket(1, 1, 0);
            Assert.True(fd >= 0 && bind(fd, sun, 110) == 0, "cannot bind the stale socket");
            close(fd);
        }
    }

    static ushort? FileTypeOf(string path) => LibC.FileType(path);

    static class LibCTypes
    {
        public static readonly ushort? Socket = LibC.S_IFSOCK;
    }
}
