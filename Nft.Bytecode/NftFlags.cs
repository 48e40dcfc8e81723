namespace Nft.Bytecode;

[Flags]
public enum NftTableFlags : uint { None = 0, Dormant = 0x1, Owner = 0x2, Mask = Dormant | Owner }

[Flags]
public enum NftChainFlags : uint { None = 0, Base = 0x1, HwOffload = 0x2, Binding = 0x4, Mask = Base | HwOffload | Binding }

[Flags]
public enum NftSetFlags : uint
{
    None = 0, Anonymous = 0x1, Constant = 0x2, Interval = 0x4, Map = 0x8, Timeout = 0x10, Eval = 0x20,
    Object = 0x40, Concat = 0x80, Expr = 0x100, Mask = 0x1ff,
}

public enum NftSetPolicy : uint { Performance = 0, Memory = 1 }

[Flags]
public enum NftSetElemFlags : uint { None = 0, IntervalEnd = 0x1, Catchall = 0x2 }

[Flags]
public enum NftFlowtableFlags : uint { None = 0, HwOffload = 0x1, Counter = 0x2 }

/// <summary>NFT_OBJECT_* stateful object types.</summary>
public enum NftObjectType : uint
{
    Unspec = 0, Counter = 1, Quota = 2, CtHelper = 3, Limit = 4, Connlimit = 5, Tunnel = 6, CtTimeout = 7,
    Secmark = 8, CtExpect = 9, Synproxy = 10,
}

/// <summary>nf_tables registers: NFT_REG_VERDICT, NFT_REG_1..4 (16 bytes) and NFT_REG32_00..15 (4 bytes, aliasing).</summary>
public static class NftRegisters
{
    public const uint Verdict = 0;
    public const uint Reg1 = 1, Reg2 = 2, Reg3 = 3, Reg4 = 4;
    public const uint Reg32First = 8, Reg32Last = 23;
}

/// <summary>Netfilter hook numbers (NF_INET_*, NF_NETDEV_*).</summary>
public static class NfHooks
{
    public const uint PreRouting = 0, LocalIn = 1, Forward = 2, LocalOut = 3, PostRouting = 4, Ingress = 5;
    public const uint NetdevIngress = 0, NetdevEgress = 1;
}

/// <summary>NFPROTO_* table families.</summary>
public static class NfProto
{
    public const byte Unspec = 0, Inet = 1, Ipv4 = 2, Arp = 3, Netdev = 5, Bridge = 7, Ipv6 = 10;

    /// <summary>A family nf_tables has tables for.</summary>
    public static bool Known(byte f) => f is Inet or Ipv4 or Arp or Netdev or Bridge or Ipv6;
}
