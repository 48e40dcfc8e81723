namespace Nft.Bytecode;

/// <summary>Limits the kernel enforces on nf_tables input (include/uapi/linux/netfilter/nf_tables.h and nf_tables_api.c).</summary>
public static class NftLimits
{
    /// <summary>NFT_NAME_MAXLEN: names are NLA_STRING with .len = NFT_NAME_MAXLEN - 1.</summary>
    public const int NameMaxLen = 256;
    public const int TableNameMax = NameMaxLen - 1;
    public const int ChainNameMax = NameMaxLen - 1;
    public const int SetNameMax = NameMaxLen - 1;
    public const int ObjNameMax = NameMaxLen - 1;
    public const int FlowtableNameMax = NameMaxLen - 1;
    /// <summary>NFT_USERDATA_MAXLEN: NFTA_*_USERDATA are NLA_BINARY with this maximum.</summary>
    public const int UserDataMaxLen = 256;
    /// <summary>NFT_DATA_VALUE_MAXLEN: largest NFTA_DATA_VALUE.</summary>
    public const int DataValueMaxLen = 64;
    /// <summary>NFT_RULE_MAXEXPRS: expressions per rule.</summary>
    public const int RuleMaxExprs = 128;
    /// <summary>Total size of a rule's expression data must stay below this (EFBIG).</summary>
    public const int RuleMaxDataSize = 4096;
    /// <summary>Expression names are NLA_STRING with .len = NFT_EXPR_MAXNAMELEN - 1.</summary>
    public const int ExprNameMax = 15;
    /// <summary>Interface names (IFNAMSIZ - 1).</summary>
    public const int IfNameMax = 15;
    /// <summary>NFT_SET_MAXNAMELEN for set names referenced from expressions.</summary>
    public const int ObjTypeNameMax = 32;
    /// <summary>NFT_REG32_COUNT: concatenation fields per set key.</summary>
    public const int SetConcatMaxFields = 16;
    /// <summary>NFT_SET_EXPR_MAX: expressions attached to a set or element.</summary>
    public const int SetExprMax = 2;
    /// <summary>Nesting of expressions inside expressions (dynset, inner) the decoder accepts.</summary>
    public const int ExprNestingMax = 3;
    /// <summary>Devices per hook accepted by the decoder (netdev chains, flowtables).</summary>
    public const int HookDevicesMax = 256;
    /// <summary>Largest secmark context (NFT_SECMARK_CTX_MAXLEN).</summary>
    public const int SecmarkCtxMaxLen = 4096;
    /// <summary>Log prefix maximum (NF_LOG_PREFIXLEN - 1).</summary>
    public const int LogPrefixMax = 127;
    /// <summary>NFT_JUMP_STACK_SIZE: jumps deeper than this fail validation (ELOOP shows as EMLINK).</summary>
    public const int JumpStackSize = 16;
    /// <summary>NFT_MAX_HOOKS: hook numbers of the inet family, ingress included.</summary>
    public const int MaxHooks = 6;
}
