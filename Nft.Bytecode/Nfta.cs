namespace Nft.Bytecode;

// NFTA_* attribute numbers of nf_tables objects (include/uapi/linux/netfilter/nf_tables.h).
// Expression attributes live next to each expression kind in Expressions/.

public static class NftaList { public const ushort Elem = 1; }

public static class NftaExpr { public const ushort Name = 1, Data = 2; }

public static class NftaHook { public const ushort HookNum = 1, Priority = 2, Dev = 3, Devs = 4, Max = Devs; }

public static class NftaDevice { public const ushort Name = 1; }

public static class NftaTable
{
    public const ushort Name = 1, Flags = 2, Use = 3, Handle = 4, Pad = 5, UserData = 6, Owner = 7, Max = Owner;
}

public static class NftaChain
{
    public const ushort Table = 1, Handle = 2, Name = 3, Hook = 4, Policy = 5, Use = 6, Type = 7,
        Counters = 8, Pad = 9, Flags = 10, Id = 11, UserData = 12, Max = UserData;
}

/// <summary>NFTA_COUNTER_* as used inside NFTA_CHAIN_COUNTERS.</summary>
public static class NftaCounter { public const ushort Bytes = 1, Packets = 2, Pad = 3; }

public static class NftaRule
{
    public const ushort Table = 1, Chain = 2, Handle = 3, Expressions = 4, Compat = 5, Position = 6,
        UserData = 7, Pad = 8, Id = 9, PositionId = 10, ChainId = 11, Max = ChainId;
}

public static class NftaRuleCompat { public const ushort Proto = 1, Flags = 2; }

public static class NftaSet
{
    public const ushort Table = 1, Name = 2, Flags = 3, KeyType = 4, KeyLen = 5, DataType = 6, DataLen = 7,
        Policy = 8, Desc = 9, Id = 10, Timeout = 11, GcInterval = 12, UserData = 13, Pad = 14, ObjType = 15,
        Handle = 16, Expr = 17, Expressions = 18, Type = 19, Count = 20;
    /// <summary>Highest attribute a request carries: NFTA_SET_TYPE and NFTA_SET_COUNT only appear in dumps.</summary>
    public const ushort Max = Expressions;
}

public static class NftaSetDesc { public const ushort Size = 1, Concat = 2; }

public static class NftaSetField { public const ushort Len = 1; }

public static class NftaSetElem
{
    public const ushort Key = 1, Data = 2, Flags = 3, Timeout = 4, Expiration = 5, UserData = 6, Expr = 7,
        Pad = 8, ObjRef = 9, KeyEnd = 10, Expressions = 11, Max = Expressions;
}

public static class NftaSetElemList { public const ushort Table = 1, Set = 2, Elements = 3, SetId = 4, Max = SetId; }

public static class NftaObj
{
    public const ushort Table = 1, Name = 2, Type = 3, Data = 4, Use = 5, Handle = 6, Pad = 7, UserData = 8, Max = UserData;
}

public static class NftaFlowtable
{
    public const ushort Table = 1, Name = 2, Hook = 3, Use = 4, Handle = 5, Pad = 6, Flags = 7;
}

public static class NftaFlowtableHook { public const ushort Num = 1, Priority = 2, Devs = 3; }

public static class NftaGen { public const ushort Id = 1, ProcPid = 2, ProcName = 3; }

public static class NftaData { public const ushort Value = 1, Verdict = 2; }

public static class NftaVerdict { public const ushort Code = 1, Chain = 2, ChainId = 3; }
