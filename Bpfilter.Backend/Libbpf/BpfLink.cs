namespace Bpfilter.Backend.Libbpf;

public enum XdpMode : uint { Auto = 0, Generic = 2, Driver = 4 }

/// <summary>
/// A BPF link attaching a program to a hook. Closing the link detaches (unless pinned);
/// <see cref="Update"/> swaps the program atomically.
/// </summary>
public sealed unsafe class BpfLink : IDisposable
{
    /// <summary>BPF_F_NETFILTER_IP_DEFRAG: ask netfilter to defragment before the program runs.</summary>
    public const uint NetfilterIpDefrag = 1;

    private BpfLink(BpfFd fd, string description) { Fd = fd; Description = description; }

    public BpfFd Fd { get; }
    public string Description { get; }

    public static BpfLink AttachXdp(BpfProgram program, int ifindex, XdpMode mode = XdpMode.Auto)
    {
        var opts = new Native.LinkCreateOpts { Sz = (nuint)sizeof(Native.LinkCreateOpts), Flags = (uint)mode };
        return Create(program, ifindex, BpfAttachType.Xdp, &opts, $"xdp ifindex {ifindex}");
    }

    /// <summary>tcx link (kernel 6.6+), appended after existing tcx programs of the device.</summary>
    public static BpfLink AttachTcx(BpfProgram program, int ifindex, bool ingress)
    {
        var opts = new Native.LinkCreateOpts { Sz = (nuint)sizeof(Native.LinkCreateOpts) };
        return Create(program, ifindex, ingress ? BpfAttachType.TcxIngress : BpfAttachType.TcxEgress, &opts,
            $"tcx {(ingress ? "ingress" : "egress")} ifindex {ifindex}");
    }

    /// <param name="protocolFamily">NFPROTO_IPV4 (2) or NFPROTO_IPV6 (10).</param>
    /// <param name="hook">NF_INET_PRE_ROUTING (0) .. NF_INET_POST_ROUTING (4).</param>
    public static BpfLink AttachNetfilter(BpfProgram program, int protocolFamily, int hook, int priority, uint flags = 0)
    {
        var opts = new Native.LinkCreateOpts
        {
            Sz = (nuint)sizeof(Native.LinkCreateOpts),
            NfPf = (uint)protocolFamily,
            NfHooknum = (uint)hook,
            NfPriority = priority,
            NfFlags = flags,
        };
        return Create(program, 0, BpfAttachType.Netfilter, &opts, $"netfilter pf {protocolFamily} hook {hook} priority {priority}");
    }

    private static BpfLink Create(BpfProgram program, int target, BpfAttachType type, Native.LinkCreateOpts* opts, string what)
    {
        var fd = BpfException.Check($"attaching '{program.Name}' at {what}", Native.BpfLinkCreate(program.Fd.Value, target, (int)type, opts));
        return new BpfLink(new BpfFd(fd), what);
    }

    /// <summary>Replaces the link's program atomically: no packet sees neither or both.</summary>
    public void Update(BpfProgram program)
    {
        var opts = new Native.LinkUpdateOpts { Sz = (nuint)sizeof(Native.LinkUpdateOpts) };
        BpfException.Check($"updating link {Description}", Native.BpfLinkUpdate(Fd.Value, program.Fd.Value, &opts));
    }

    public void Pin(string path) => BpfException.Check($"pinning link {Description} at {path}", Native.BpfObjPin(Fd.Value, path));

    /// <summary>Opens a link pinned in bpffs (bpf_obj_get): the hook stays attached while it is pinned or open.</summary>
    public static BpfLink Open(string path) =>
        new(new BpfFd(BpfException.Check($"opening pinned link {path}", Native.BpfObjGet(path))), $"pinned {path}");

    /// <summary>Kernel link id and the id of the program it runs.</summary>
    public (uint LinkId, uint ProgramId) Ids => BpfInfo.Link(Fd.Value);

    public void Dispose() => Fd.Dispose();

    public static int IfIndex(string device)
    {
        var i = Native.IfNameToIndex(device);
        return i == 0 ? throw new BpfException($"looking up device '{device}'", 19) : (int)i;
    }
}
