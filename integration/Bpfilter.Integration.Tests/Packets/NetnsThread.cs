using System.Runtime.ExceptionServices;

namespace Bpfilter.Integration.Tests.Packets;

/// <summary>
/// Runs code inside a network namespace: a dedicated thread calls setns(CLONE_NEWNET), which moves
/// only that thread, then ends. Sockets keep the namespace they were created in, so descriptors
/// opened here stay usable from any thread afterwards.
/// </summary>
internal static class NetnsThread
{
    public static T Run<T>(string netnsPath, Func<T> body)
    {
        T result = default!;
        ExceptionDispatchInfo? error = null;
        var t = new Thread(() =>
        {
            try
            {
                LinuxSockets.EnterNetns(netnsPath);
                result = body();
            }
            catch (Exception e) { error = ExceptionDispatchInfo.Capture(e); }
        }) { IsBackground = true, Name = "netns" };
        t.Start();
        t.Join();
        error?.Throw();
        return result;
    }
}
