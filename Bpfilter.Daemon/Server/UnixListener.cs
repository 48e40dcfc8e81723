using System.Net.Sockets;

namespace Bpfilter.Daemon.Server;

/// <summary>Listening Unix stream sockets with a file mode, replacing only a socket file no live process answers on.</summary>
internal static class UnixListener
{
    /// <summary>
    /// Binds and listens at <paramref name="path"/> with <paramref name="mode"/>, creating its directory (0755) when
    /// missing; throws if the path is taken by a live listener or a non-socket.
    /// </summary>
    public static Socket Bind(string path, UnixFileMode mode, int backlog, Action<string> log)
    {
        var dir = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(dir))
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        RemoveStale(path, log);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, mode);
            listener.Listen(backlog);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <summary>A socket file left by a daemon that died is removed; one that still answers is not.</summary>
    static void RemoveStale(string path, Action<string> log)
    {
        var type = LibC.FileType(path);
        if (type == null) return;
        if (type != LibC.S_IFSOCK)
            throw new IOException($"{path} exists and is not a socket; refusing to replace it");
        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new IOException($"another daemon is listening on {path}");
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
            }
        }
        File.Delete(path);
        log($"removed stale socket {path}");
    }
}
