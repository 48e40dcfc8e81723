namespace Bpfilter.Integration.Tests.Robustness;

/// <summary>
/// The few nf_tables wire numbers the request builder needs (linux/netfilter/nf_tables.h), kept
/// here so the fuzz corpus does not depend on the code under test.
/// </summary>
static class NfWire
{
    public const byte FamilyUnspec = 0, FamilyInet = 1, FamilyIp = 2, FamilyNetdev = 5, FamilyIp6 = 10;

    // enum nf_tables_msg_types
    public const byte NewTable = 0, GetTable = 1, DelTable = 2, NewChain = 3, GetChain = 4, DelChain = 5,
        NewRule = 6, GetRule = 7, DelRule = 8, NewSet = 9, GetSet = 10, DelSet = 11, NewSetElem = 12,
        GetSetElem = 13, DelSetElem = 14, GetGen = 16, NewObj = 18, GetObj = 19, DelObj = 20;

    public const ushort TableName = 1, TableFlags = 2;
    public const ushort ChainTable = 1, ChainHandle = 2, ChainName = 3, ChainHook = 4, ChainPolicy = 5, ChainType = 7;
    public const ushort HookNum = 1, HookPriority = 2, HookDev = 3;
    public const ushort RuleTable = 1, RuleChain = 2, RuleHandle = 3, RuleExpressions = 4, RulePosition = 6, RuleUserdata = 7;
    public const ushort ListElem = 1;
    public const ushort ExprName = 1, ExprData = 2;
    public const ushort DataValue = 1, DataVerdict = 2;
    public const ushort VerdictCode = 1, VerdictChain = 2;

    public const ushort PayloadDreg = 1, PayloadBase = 2, PayloadOffset = 3, PayloadLen = 4;
    public const ushort CmpSreg = 1, CmpOp = 2, CmpData = 3;
    public const ushort ImmDreg = 1, ImmData = 2;
    public const ushort MetaDreg = 1, MetaKey = 2;
    public const ushort BitwiseSreg = 1, BitwiseDreg = 2, BitwiseLen = 3, BitwiseMask = 4, BitwiseXor = 5;
    public const ushort RangeSreg = 1, RangeOp = 2, RangeFrom = 3, RangeTo = 4;
    public const ushort LookupSet = 1, LookupSreg = 2, LookupSetId = 4, LookupFlags = 5;
    public const ushort CounterBytes = 1, CounterPackets = 2;

    public const ushort SetTable = 1, SetName = 2, SetFlags = 3, SetKeyType = 4, SetKeyLen = 5, SetDataType = 6,
        SetDataLen = 7, SetId = 10, SetTimeout = 11;
    public const ushort SetElemListTable = 1, SetElemListSet = 2, SetElemListElements = 3;
    public const ushort SetElemKey = 1, SetElemData = 2, SetElemFlags = 3, SetElemKeyEnd = 10;

    public const ushort ObjTable = 1, ObjName = 2, ObjType = 3, ObjData = 4;
    public const uint ObjectCounter = 1, ObjectQuota = 2;
    public const ushort QuotaBytes = 1, QuotaFlags = 2;

    public const uint RegVerdict = 0, Reg1 = 1, Reg32_00 = 8;
    public const uint BaseLl = 0, BaseNetwork = 1, BaseTransport = 2;
    public const uint CmpEq = 0, CmpNeq = 1, CmpLt = 2, CmpGte = 5;
    public const uint MetaLen = 0, MetaProtocol = 1, MetaMark = 3, MetaIif = 4, MetaIifname = 6, MetaL4proto = 16, MetaNfproto = 15;
    public const int NfDrop = 0, NfAccept = 1, NftJump = -3, NftReturn = -5;
    public const uint HookInput = 1, HookOutput = 3;
    public const uint SetAnonymous = 1, SetConstant = 2, SetInterval = 4, SetMap = 8;
}
