namespace Nft.Netlink;

/// <summary>Netlink message types shared by every family (linux/netlink.h).</summary>
public static class NlMsgType
{
    public const ushort Noop = 1;
    public const ushort Error = 2;
    public const ushort Done = 3;
    public const ushort Overrun = 4;
    /// <summary>Types below this are control messages, not family requests.</summary>
    public const ushort MinType = 0x10;
}

/// <summary>nlmsghdr.nlmsg_flags bits (linux/netlink.h).</summary>
[Flags]
public enum NlmFlags : ushort
{
    None = 0,
    Request = 0x1,
    Multi = 0x2,
    Ack = 0x4,
    Echo = 0x8,
    DumpIntr = 0x10,
    DumpFiltered = 0x20,
    // GET requests
    Root = 0x100,
    Match = 0x200,
    Atomic = 0x400,
    Dump = Root | Match,
    // NEW requests
    Replace = 0x100,
    Excl = 0x200,
    Create = 0x400,
    Append = 0x800,
    // DELETE requests
    NonRec = 0x100,
    Bulk = 0x200,
    // ACK replies
    Capped = 0x100,
    AckTlvs = 0x200,
}

/// <summary>NLMSGERR_ATTR_* extended-ACK attributes.</summary>
public static class NlmsgErrAttr
{
    public const ushort Msg = 1;
    public const ushort Offs = 2;
    public const ushort Cookie = 3;
    public const ushort Policy = 4;
    public const ushort MissType = 5;
    public const ushort MissNest = 6;
}

/// <summary>nfnetlink framing constants (linux/netfilter/nfnetlink.h).</summary>
public static class Nfnl
{
    public const int NetlinkNetfilter = 12;
    public const byte SubsysNone = 0;
    public const byte SubsysNftables = 10;
    public const ushort MsgBatchBegin = NlMsgType.MinType;     // 0x10
    public const ushort MsgBatchEnd = NlMsgType.MinType + 1;   // 0x11
    public const byte Version0 = 0;
    /// <summary>NFNL_BATCH_GENID: attribute of BATCH_BEGIN carrying the expected generation.</summary>
    public const ushort BatchGenId = 1;

    public static byte Subsys(ushort type) => (byte)(type >> 8);
    public static byte Msg(ushort type) => (byte)(type & 0xff);
    public static ushort Type(byte subsys, byte msg) => (ushort)(subsys << 8 | msg);
}

/// <summary>Attribute type flag bits (linux/netlink.h).</summary>
public static class NlaFlags
{
    public const ushort Nested = 0x8000;
    public const ushort NetByteOrder = 0x4000;
    public const ushort TypeMask = unchecked((ushort)~(Nested | NetByteOrder));
}

/// <summary>Sizes and named limits.</summary>
public static class NetlinkLimits
{
    public const int HeaderSize = 16;
    public const int NfGenMsgSize = 4;
    public const int AttrHeaderSize = 4;
    public const int Alignment = 4;
    /// <summary>Maximum nesting accepted by decoders before refusing a message.</summary>
    public const int MaxNestingDepth = 16;

    public static int Align(int len) => (len + Alignment - 1) & ~(Alignment - 1);
}
