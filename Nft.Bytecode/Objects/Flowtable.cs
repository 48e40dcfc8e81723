using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Objects;

/// <summary>NEWFLOWTABLE / GETFLOWTABLE / DELFLOWTABLE contents.</summary>
public sealed record Flowtable : IAttributeSource
{
    public byte Family { get; init; }
    public string? Table { get; init; }
    public string? Name { get; init; }
    public FlowtableHook? Hook { get; init; }
    public uint? Use { get; init; }
    public ulong? Handle { get; init; }
    public uint? Flags { get; init; }
    public AttributeLayout? Layout { get; init; }

    static readonly ushort[] KernelOrder = [NftaFlowtable.Table, NftaFlowtable.Name, NftaFlowtable.Handle, NftaFlowtable.Use,
        NftaFlowtable.Flags, NftaFlowtable.Hook];

    public static Flowtable Decode(NetlinkMessage msg)
    {
        var p = AttrParser.Of(msg);
        var ft = new Flowtable
        {
            Family = msg.GenMsg.Family,
            Table = p.Str(NftaFlowtable.Table, NftLimits.TableNameMax),
            Name = p.Str(NftaFlowtable.Name, NftLimits.FlowtableNameMax),
            Hook = p.TryGet(NftaFlowtable.Hook, out var h) ? FlowtableHook.Decode(h) : null,
            Use = p.U32Be(NftaFlowtable.Use),
            Handle = p.U64Be(NftaFlowtable.Handle),
            Flags = p.U32Be(NftaFlowtable.Flags),
        };
        return ft with { Layout = p.Layout() };
    }

    public void Encode(NetlinkWriter w, WireFormat format = WireFormat.AsDecoded) =>
        AttrWriter.Write(w, Layout, KernelOrder, this, format);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
    {
        switch (raw & NlaFlags.TypeMask)
        {
            case NftaFlowtable.Table when Table != null: AttrWriter.PutString(w, raw, Table); return true;
            case NftaFlowtable.Name when Name != null: AttrWriter.PutString(w, raw, Name); return true;
            case NftaFlowtable.Hook when Hook != null: Hook.Encode(w, raw, f); return true;
            case NftaFlowtable.Use when Use != null: w.PutU32Be(raw, Use.Value); return true;
            case NftaFlowtable.Handle when Handle != null: w.PutU64Be(raw, Handle.Value); return true;
            case NftaFlowtable.Flags when Flags != null: w.PutU32Be(raw, Flags.Value); return true;
            default: return false;
        }
    }
}

/// <summary>NFTA_FLOWTABLE_HOOK: hook number, priority and devices.</summary>
public sealed record FlowtableHook(uint? Num, int? Priority, IReadOnlyList<string>? Devices) : IAttributeSource
{
    public AttributeLayout? Layout { get; init; }
    static readonly ushort[] KernelOrder = [NftaFlowtableHook.Num, NftaFlowtableHook.Priority, NftaFlowtableHook.Devs];

    public static FlowtableHook Decode(NetlinkAttribute nest)
    {
        var p = AttrParser.Of(nest);
        var h = new FlowtableHook(p.U32Be(NftaFlowtableHook.Num), p.S32Be(NftaFlowtableHook.Priority),
            p.TryGet(NftaFlowtableHook.Devs, out var d) ? AttrLists.ReadDevices(d) : null);
        return h with { Layout = p.Layout() };
    }

    public void Encode(NetlinkWriter w, ushort type, WireFormat f) =>
        AttrLists.Nested(w, AttrWriter.NestType(Layout, type, f), Layout, KernelOrder, this, f);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
    {
        switch (raw & NlaFlags.TypeMask)
        {
            case NftaFlowtableHook.Num when Num != null: w.PutU32Be(raw, Num.Value); return true;
            case NftaFlowtableHook.Priority when Priority != null: w.PutU32Be(raw, (uint)Priority.Value); return true;
            case NftaFlowtableHook.Devs when Devices != null: AttrLists.Devices(w, raw, Devices); return true;
            default: return false;
        }
    }

    public bool Equals(FlowtableHook? o) => o is not null && Num == o.Num && Priority == o.Priority && Bin.Eq(Devices, o.Devices)
        && Equals(Layout, o.Layout);
    public override int GetHashCode() => HashCode.Combine(Num, Priority);
}
