using System.Globalization;
using System.Net.Sockets;

namespace Bpfilter.Daemon.Server;

/// <summary>
/// Who is on the other end of a daemon connection, and whether nf_tables would obey them.
/// The kernel serves an nfnetlink socket only for CAP_NET_ADMIN in the network namespace's owning
/// user namespace; the daemon applies the same rule to the process that connected.
/// </summary>
public sealed record PeerCredentials(int Pid, uint Uid, uint Gid, bool NetAdmin)
{
    const int CapNetAdmin = 12;

    /// <summary>Reads SO_PEERCRED and the peer's effective capabilities. Never throws.</summary>
    public static PeerCredentials Of(Socket socket)
    {
        int fd = (int)socket.SafeHandle.DangerousGetHandle();
        LibC.UCred cred;
        uint len = (uint)System.Runtime.CompilerServices.Unsafe.SizeOf<LibC.UCred>();
        unsafe
        {
            if (LibC.getsockopt(fd, LibC.SOL_SOCKET, LibC.SO_PEERCRED, &cred, ref len) != 0)
                return new PeerCredentials(0, uint.MaxValue, uint.MaxValue, false);
        }
        return new PeerCredentials(cred.Pid, cred.Uid, cred.Gid, HoldsNetAdmin(fd, cred.Pid));
    }

    /// <summary>
    /// CapEff of /proc/PID/status, trusted only if the process lives in our user namespace and is,
    /// after the read, still the process that connected (checked through SO_PEERPIDFD, so a
    /// recycled pid cannot lend its capabilities to an exited client).
    /// </summary>
    static bool HoldsNetAdmin(int socketFd, int pid)
    {
        if (pid <= 0) return false;
        int pidfd = -1;
        try
        {
            unsafe
            {
                int v = -1;
                uint len = sizeof(int);
                if (LibC.getsockopt(socketFd, LibC.SOL_SOCKET, LibC.SO_PEERPIDFD, &v, ref len) == 0) pidfd = v;
            }
            if (pidfd < 0) return false; // kernel without SO_PEERPIDFD: refuse rather than race
            if (!SameUserNamespace(pid)) return false;
            ulong? capEff = ReadCapEff(pid);
            if (capEff is not ulong caps || (caps & (1UL << CapNetAdmin)) == 0) return false;
            return LibC.PidfdAlive(pidfd);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        finally
        {
            if (pidfd >= 0) LibC.close(pidfd);
        }
    }

    static bool SameUserNamespace(int pid)
    {
        string? ours = new FileInfo("/proc/self/ns/user").LinkTarget;
        string? theirs = null;
        try
        {
            theirs = new FileInfo($"/proc/{pid}/ns/user").LinkTarget;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
        }
        if (theirs == null)
        {
            // /proc/PID/ns needs ptrace access, which a daemon confined to fewer capabilities than its
            // peer (the systemd unit keeps only CAP_NET_ADMIN, CAP_BPF, CAP_PERFMON) lacks. uid_map is
            // world-readable: the same map as ours, read relative to our own namespace, means the peer's
            // ids are ours. A nested namespace shows a map that differs (its ids seen from ours).
            return File.ReadAllText($"/proc/{pid}/uid_map") == File.ReadAllText("/proc/self/uid_map");
        }
        return ours != null && ours == theirs;
    }

    internal static ulong? ReadCapEff(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (!line.StartsWith("CapEff:", StringComparison.Ordinal)) continue;
            return ulong.TryParse(line.AsSpan(7).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var v) ? v : null;
        }
        return null;
    }
}
