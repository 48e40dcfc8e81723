using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Objects;

/// <summary>NEWCHAIN / GETCHAIN / DELCHAIN contents. Base chains carry a hook, a type and a policy.</summary>
public sealed record Chain : IAttributeSource
{
    public byte Family { get; init; }
    public string? Table { get; init; }
    public ulong? Handle { get; init; }
    public string? Name { get; init; }
    public ChainHook? Hook { get; init; }
    /// <summary>NF_ACCEPT (1) or NF_DROP (0).</summary>
    public uint? Policy { get; init; }
    public uint? Use { get; init; }
    /// <summary>"filter", "nat" or "route".</summary>
    public string? Type { get; init; }
    public ChainCounters? Counters { get; init; }
    public uint? Flags { get; init; }
    public uint? Id { get; init; }
    public byte[]? UserData { get; init; }
    public AttributeLayout? Layout { get; init; }

    public NftChainFlags ChainFlags => (NftChainFlags)(Flags ?? 0);

    static readonly ushort[] KernelOrder = [NftaChain.Table, NftaChain.Name, NftaChain.Handle, NftaChain.Hook, NftaChain.Policy,
        NftaChain.Type, NftaChain.Counters, NftaChain.Flags, NftaChain.Use, NftaChain.UserData, NftaChain.Id];

    public static Chain Decode(NetlinkMessage msg)
    {
        var p = AttrParser.Of(msg);
        var c = new Chain
        {
            Family = msg.GenMsg.Family,
            Table = p.Str(NftaChain.Table, NftLimits.TableNameMax),
            Handle = p.U64Be(NftaChain.Handle),
            Name = p.Str(NftaChain.Name, NftLimits.ChainNameMax),
            Hook = p.TryGet(NftaChain.Hook, out var h) ? ChainHook.Decode(h) : null,
            Policy = p.U32Be(NftaChain.Policy),
            Use = p.U32Be(NftaChain.Use),
            Type = p.Str(NftaChain.Type, NftLimits.ObjTypeNameMax - 1),
            Counters = p.TryGet(NftaChain.Counters, out var cn) ? ChainCounters.Decode(cn) : null,
            Flags = p.U32Be(NftaChain.Flags),
            Id = p.U32Be(NftaChain.Id),
            UserData = p.Bytes(NftaChain.UserData, NftLimits.UserDataMaxLen),
        };
        return c with { Layout = p.Layout() };
    }

    public void Encode(NetlinkWriter w, WireFormat format = WireFormat.AsDecoded) =>
        AttrWriter.Write(w, Layout, KernelOrder, this, format);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
    {
        switch (raw & NlaFlags.TypeMask)
        {
            case NftaChain.Table when Table != null: AttrWriter.PutString(w, raw, Table); return true;
            case NftaChain.Handle when Handle != null: w.PutU64Be(raw, Handle.Value); return true;
            case NftaChain.Name when Name != null: AttrWriter.PutString(w, raw, Name); return true;
            case NftaChain.Hook when Hook != null: Hook.Encode(w, raw, f); return true;
            case NftaChain.Policy when Policy != null: w.PutU32Be(raw, Policy.Value); return true;
            case NftaChain.Use when Use != null: w.PutU32Be(raw, Use.Value); return true;
            case NftaChain.Type when Type != null: AttrWriter.PutString(w, raw, Type); return true;
            case NftaChain.Counters when Counters != null: Counters.Encode(w, raw, f); return true;
            case NftaChain.Flags when Flags != null: w.PutU32Be(raw, Flags.Value); return true;
            case NftaChain.Id when Id != null: w.PutU32Be(raw, Id.Value); return true;
            case NftaChain.UserData when UserData != null: w.PutRaw(raw, UserData); return true;
            default: return false;
        }
    }

    public bool Equals(Chain? o) => o is not null && Family == o.Family && Table == o.Table && Handle == o.Handle && Name == o.Name
        && Equals(Hook, o.Hook) && Policy == o.Policy && Use == o.Use && Type == o.Type && Equals(Counters, o.Counters)
        && Flags == o.Flags && Id == o.Id && Bin.Eq(UserData, o.UserData) && Equals(Layout, o.Layout);
    public override int GetHashCode() => HashCode.Combine(Family, Table, Name, Handle);
}

/// <summary>NFTA_CHAIN_HOOK: hook number, priority, and for netdev-family hooks the device(s).</summary>
public sealed record ChainHook(uint? HookNum, int? Priority, string? Device = null, IReadOnlyList<string>? Devices = null) : IAttributeSource
{
    public AttributeLayout? Layout { get; init; }

    static readonly ushort[] KernelOrder = [NftaHook.HookNum, NftaHook.Priority, NftaHook.Devs, NftaHook.Dev];

    public static ChainHook Decode(NetlinkAttribute nest)
    {
        var p = AttrParser.Of(nest);
        var hook = new ChainHook(
            p.U32Be(NftaHook.HookNum),
            p.S32Be(NftaHook.Priority),
            p.Str(NftaHook.Dev, NftLimits.IfNameMax),
            p.TryGet(NftaHook.Devs, out var d) ? AttrLists.ReadDevices(d) : null);
        return hook with { Layout = p.Layout() };
    }

    /// <summary>The devices named either way (NFTA_HOOK_DEVS wins, as in the kernel).</summary>
    public IReadOnlyList<string> AllDevices => Devices ?? (Device != null ? [Device] : []);

    public void Encode(NetlinkWriter w, ushort type, WireFormat f) =>
        AttrLists.Nested(w, AttrWriter.NestType(Layout, type, f), Layout, KernelOrder, this, f);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
    {
        switch (raw & NlaFlags.TypeMask)
        {
            case NftaHook.HookNum when HookNum != null: w.PutU32Be(raw, HookNum.Value); return true;
            case NftaHook.Priority when Priority != null: w.PutU32Be(raw, (uint)Priority.Value); return true;
            case NftaHook.Dev when Device != null: AttrWriter.PutString(w, raw, Device); return true;
            case NftaHook.Devs when Devices != null: AttrLists.Devices(w, raw, Devices); return true;
            default: return false;
        }
    }

    public bool Equals(ChainHook? o) => o is not null && HookNum == o.HookNum && Priority == o.Priority && Device == o.Device
        && Bin.Eq(Devices, o.Devices) && Equals(Layout, o.Layout);
    public override int GetHashCode() => HashCode.Combine(HookNum, Priority, Device);
}

/// <summary>NFTA_CHAIN_COUNTERS: base chain packet and byte counters.</summary>
public sealed record ChainCounters(ulong? Packets, ulong? Bytes) : IAttributeSource
{
    public AttributeLayout? Layout { get; init; }

    static readonly ushort[] KernelOrder = [NftaCounter.Packets, NftaCounter.Bytes];

    public static ChainCounters Decode(NetlinkAttribute nest)
    {
        var p = AttrParser.Of(nest);
        var c = new ChainCounters(p.U64Be(NftaCounter.Packets), p.U64Be(NftaCounter.Bytes));
        return c with { Layout = p.Layout() };
    }

    public void Encode(NetlinkWriter w, ushort type, WireFormat f) =>
        AttrLists.Nested(w, AttrWriter.NestType(Layout, type, f), Layout, KernelOrder, this, f);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
    {
        switch (raw & NlaFlags.TypeMask)
        {
            case NftaCounter.Packets when Packets != null: w.PutU64Be(raw, Packets.Value); return true;
            case NftaCounter.Bytes when Bytes != null: w.PutU64Be(raw, Bytes.Value); return true;
            default: return false;
        }
    }
}
