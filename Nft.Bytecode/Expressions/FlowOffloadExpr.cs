using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>flow_offload ("flow add @ft"): offloads the connection to the flowtable TableName.</summary>
public sealed record FlowOffloadExpr(string TableName) : AttributeExpression
{
    public const ushort NFTA_FLOW_TABLE_NAME = 1;
    public override string Name => "flow_offload";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_FLOW_TABLE_NAME];

    public static FlowOffloadExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var tableName = p.Str(NFTA_FLOW_TABLE_NAME, NftLimits.FlowtableNameMax) ?? throw p.Missing("NFTA_FLOW_TABLE_NAME");
        return new FlowOffloadExpr(tableName) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_FLOW_TABLE_NAME => Str(w, raw, TableName),
        _ => false,
    };
}
