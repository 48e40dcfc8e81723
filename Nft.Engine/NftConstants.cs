namespace Nft.Engine;

/// <summary>nf_tables message types (enum nf_tables_msg_types, including the 6.x additions).</summary>
internal static class NftMsg
{
    public const byte NewTable = 0, GetTable = 1, DelTable = 2;
    public const byte NewChain = 3, GetChain = 4, DelChain = 5;
    public const byte NewRule = 6, GetRule = 7, DelRule = 8;
    public const byte NewSet = 9, GetSet = 10, DelSet = 11;
    public const byte NewSetElem = 12, GetSetElem = 13, DelSetElem = 14;
    public const byte NewGen = 15, GetGen = 16, Trace = 17;
    public const byte NewObj = 18, GetObj = 19, DelObj = 20, GetObjReset = 21;
    public const byte NewFlowtable = 22, GetFlowtable = 23, DelFlowtable = 24;
    public const byte GetRuleReset = 25;
    public const byte DestroyTable = 26, DestroyChain = 27, DestroyRule = 28, DestroySet = 29;
    public const byte DestroySetElem = 30, DestroyObj = 31, DestroyFlowtable = 32;
    public const byte GetSetElemReset = 33;
    public const byte NewDev = 34, DelDev = 35;
    public const byte Max = 36;
}

/// <summary>Protocol families (NFPROTO_*).</summary>
internal static class NfProto
{
    public const byte Unspec = 0, Inet = 1, Ipv4 = 2, Arp = 3, Netdev = 5, Bridge = 7, Ipv6 = 10;

    public static bool Known(byte f) => f is Inet or Ipv4 or Arp or Netdev or Bridge or Ipv6;

    public static string Name(byte f) => f switch
    {
        Inet => "inet", Ipv4 => "ip", Arp => "arp", Netdev => "netdev", Bridge => "bridge", Ipv6 => "ip6", _ => $"family {f}",
    };
}

internal static class TableAttr
{
    public const ushort Name = 1, Flags = 2, Use = 3, Handle = 4, Pad = 5, UserData = 6, Owner = 7, Max = 7;
    public const uint FDormant = 1, FOwner = 2, FMask = 3;
}

internal static class ChainAttr
{
    public const ushort Table = 1, Handle = 2, Name = 3, Hook = 4, Policy = 5, Use = 6, Type = 7, Counters = 8,
        Pad = 9, Flags = 10, Id = 11, UserData = 12, Max = 12;
    public const uint FBase = 1, FHwOffload = 2, FBinding = 4, FMask = 7;
}

internal static class HookAttr
{
    public const ushort HookNum = 1, Priority = 2, Dev = 3, Devs = 4, Max = 4;
}

internal static class CounterAttr
{
    public const ushort Bytes = 1, Packets = 2, Max = 3;
}

internal static class RuleAttr
{
    public const ushort Table = 1, Chain = 2, Handle = 3, Expressions = 4, Compat = 5, Position = 6, UserData = 7,
        Pad = 8, Id = 9, PositionId = 10, ChainId = 11, Max = 11;
}

internal static class SetAttr
{
    public const ushort Table = 1, Name = 2, Flags = 3, KeyType = 4, KeyLen = 5, DataType = 6, DataLen = 7, Policy = 8,
        Desc = 9, Id = 10, Timeout = 11, GcInterval = 12, UserData = 13, Pad = 14, ObjType = 15, Handle = 16,
        Expr = 17, Expressions = 18, Type = 19, Count = 20, Max = 18;
    public const uint FAnonymous = 0x1, FConstant = 0x2, FInterval = 0x4, FMap = 0x8, FTimeout = 0x10, FEval = 0x20,
        FObject = 0x40, FConcat = 0x80, FExpr = 0x100, FMask = 0x1ff;
    public const ushort DescSize = 1, DescConcat = 2;
}

internal static class SetElemListAttr
{
    public const ushort Table = 1, Set = 2, Elements = 3, SetId = 4, Max = 4;
}

internal static class SetElemAttr
{
    public const ushort Key = 1, Data = 2, Flags = 3, Timeout = 4, Expiration = 5, UserData = 6, Expr = 7, Pad = 8,
        ObjRef = 9, KeyEnd = 10, Expressions = 11, Max = 11;
    public const uint FIntervalEnd = 1, FCatchAll = 2;
}

internal static class ObjAttr
{
    public const ushort Table = 1, Name = 2, Type = 3, Data = 4, Use = 5, Handle = 6, Pad = 7, UserData = 8, Max = 8;
    public const uint TCounter = 1, TQuota = 2, TCtHelper = 3, TLimit = 4, TConnlimit = 5, TTunnel = 6,
        TCtTimeout = 7, TSecmark = 8, TCtExpect = 9, TSynproxy = 10;
}

internal static class GenAttr
{
    public const ushort Id = 1, ProcPid = 2, ProcName = 3;
}

internal static class DataAttr
{
    public const ushort Value = 1, Verdict = 2;
    public const ushort VerdictCode = 1, VerdictChain = 2, VerdictChainId = 3;
    public const uint VerdictMapType = 0xffffff00;
}

/// <summary>enum nft_verdicts plus the netfilter verdicts they extend.</summary>
internal static class VerdictCode
{
    public const int Drop = 0, Accept = 1, Queue = 3, Stop = 5;
    public const int Continue = -1, Break = -2, Jump = -3, Goto = -4, Return = -5;
}

internal static class FlowtableAttr
{
    public const ushort Table = 1, Name = 2;
}

/// <summary>Limits nf_tables enforces.</summary>
internal static class NftLimits
{
    public const int NameMaxLen = 256;          // NFT_NAME_MAXLEN incl. NUL
    public const int RuleMaxExprs = 128;        // NFT_RULE_MAXEXPRS
    public const int RuleMaxExprSize = 1 << 12; // dlen field of struct nft_rule
    public const int UserDataMaxLen = 256;      // NFT_USERDATA_MAXLEN
    public const int DataValueMaxLen = 64;      // NFT_DATA_VALUE_MAXLEN
    public const int JumpStackSize = 16;        // NFT_JUMP_STACK_SIZE
    public const int MaxHooks = 6;              // NFT_MAX_HOOKS (NF_INET_INGRESS + 1)
}
