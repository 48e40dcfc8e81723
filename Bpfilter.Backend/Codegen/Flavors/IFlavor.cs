using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Codegen;

/// <summary>Where packet bytes are after <see cref="IFlavor.EmitAccess"/>: readable at Pointer+Offset.</summary>
internal readonly record struct BytesRef(Register Pointer, short Offset);

/// <summary>
/// What differs between XDP, TC and netfilter programs: how the program starts, how it reads packet
/// bytes and metadata, and what accept and drop return. Register convention: R6 holds the context
/// for the whole program; R7-R8 belong to the flavor (R8 only outside subprograms); R9 is free for the rule code; every flavor
/// operation may clobber R0-R5.
/// </summary>
internal interface IFlavor
{
    BpfProgType ProgramType { get; }
    BpfAttachType AttachType { get; }
    int AcceptCode { get; }
    int DropCode { get; }
    /// <summary>True when offset 0 is an Ethernet header (XDP/TC); false when it is the network header.</summary>
    bool HasLinkLayer { get; }
    /// <summary>For netfilter hooks of one family: the EtherType every packet has; null when parsed from L2.</summary>
    int? FixedEtherType { get; }
    /// <summary>meta nfproto when it does not depend on the packet (netdev: 5), else null.</summary>
    int? FixedNfProto { get; }
    /// <summary>True when `meta length` and counters count from the network header (ingress paths).</summary>
    bool LengthFromNetworkHeader { get; }

    /// <summary>
    /// R1 = ctx on entry. Saves ctx in R6 and prepares packet access. In a subprogram (see
    /// <see cref="InSubprogram"/>) it only prepares what the subprogram's registers need: the base program's
    /// stack (a netfilter dynptr) is reached through R8.
    /// </summary>
    void EmitEntry(Assembler asm, bool needsPacket);

    /// <summary>
    /// After the prologue parsed the headers: a flavor that copies packet bytes (netfilter) may copy the
    /// start of the transport header once, when <paramref name="readsTransport"/> (a rule reads it).
    /// </summary>
    void EmitParsed(Assembler asm, bool readsTransport) { }

    /// <summary>
    /// Code is being emitted for a regular chain's subprogram, where R8 holds the base program's frame
    /// pointer (<c>ProgramCompiler.Subprograms.cs</c>): the flavor must not use R8 for itself.
    /// </summary>
    bool InSubprogram { get; set; }

    /// <summary>Stores the number of bytes visible from offset 0 at <see cref="RuntimeContext.PacketSize"/>.</summary>
    void EmitPacketSize(Assembler asm);

    /// <summary>
    /// Makes <paramref name="length"/> bytes at (value of stack slot <paramref name="baseSlot"/>, or 0) +
    /// <paramref name="offset"/> readable, or jumps to <paramref name="fail"/> when they are not in the packet.
    /// </summary>
    BytesRef EmitAccess(Assembler asm, short? baseSlot, int offset, int length, string fail);

    /// <summary>
    /// Jumps to <paramref name="fail"/> unless the bytes up to (value of stack slot <paramref name="baseSlot"/>) +
    /// <paramref name="end"/> lie in the skb's linear area: nft_payload_fast_eval's bound (skb_tail_pointer).
    /// </summary>
    void EmitLinearCheck(Assembler asm, short baseSlot, int end, string fail);

    /// <summary>
    /// Loads a numeric meta key into <paramref name="dst"/> (host order), or jumps to <paramref name="fail"/>
    /// when the packet has no such meta (e.g. oif at ingress). Null when the key is not available here.
    /// </summary>
    bool EmitMeta(Assembler asm, MetaKey key, Register dst, string fail);

    /// <summary>
    /// Interface name keys: the compile-time value when the hook fixes it (XDP on device D: iifname is D),
    /// <see cref="StaticName.Absent"/> when the packet has no such interface here, null to read it at run time.
    /// </summary>
    StaticName? StaticInterfaceName(MetaKey key);

    /// <summary>Makes the 16-byte interface name readable (run-time case), or jumps to fail.</summary>
    BytesRef EmitInterfaceName(Assembler asm, MetaKey key, string fail);

    /// <summary>
    /// A `log` statement: the packet's <see cref="Log.LogEvent"/> for statement <paramref name="configId"/>
    /// into ring buffer map <paramref name="ringBuffer"/> (<see cref="Log.LogEmitter"/>). Clobbers R0-R5 and R9.
    /// </summary>
    void EmitLog(Assembler asm, string ringBuffer, uint configId);
}

internal sealed record StaticName(Value? Name)
{
    public static readonly StaticName Absent = new((Value?)null);
}
