using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// netdev ingress `reject` at XDP, as nft_reject_netdev builds its reply with
/// nf_reject_skb_v4_tcp_reset / nf_reject_skb_v4_unreach (IPv4 frames; IPv6 ones in XdpReject.Ipv6.cs)
/// and sends it back on the device, chosen per frame by its EtherType: the frame
/// is rewritten in place into that reply (MAC addresses swapped, a VLAN tag removed as the stack had
/// removed it before the hook, IP id 0, DF, TTL net.ipv4.ip_default_ttl of the device's namespace) and
/// returned with XDP_TX. Whenever the kernel sends nothing (group destination MAC, not IPv4 after one
/// tag, neither IPv4 nor IPv6, malformed header, fragment, RST to a RST, unreachable about an unreachable, a bad checksum) the
/// frame is dropped, as the kernel's drop verdict drops it in every case. Checksums are verified over
/// the bytes as the kernel does for a CHECKSUM_NONE packet: from the network header, with the
/// pseudo-header for TCP and UDP. The TCP reset carries its full checksum (the kernel leaves it to
/// the device's offload).
/// </summary>
internal sealed partial class XdpReject(Assembler asm, IFlavor flavor, int dropCode)
{
    const int XdpTx = 3;
    /// <summary>Frames longer than this never reach an XDP program loaded without frags support (one buffer, under a page).</summary>
    const int MaxFrame = 4096;
    /// <summary>"as much as we can without exceeding 576 bytes": the quoted packet of an ICMP unreachable.</summary>
    const int IcmpQuote = 536;

    // Saved fields of the original frame, in the key buffer (free once the rules have matched).
    const short S = RuntimeContext.Key;
    const short MacDst = S, MacSrc = S + 8, Saddr = S + 16, Daddr = S + 20, Ports = S + 24, Seq = S + 28, AckSeq = S + 32,
        TcpFlags = S + 36, L3 = S + 40, Len = S + 44, Ihl = S + 48, TotLen = S + 52, Proto = S + 56, Cursor = S + 60;
    /// <summary>Checksum region: start (from the frame's start) and length; the word loop's position and words left.</summary>
    const short SumFrom = RuntimeContext.Scratch, SumLen = RuntimeContext.Scratch + 8, Doff = RuntimeContext.Scratch + 16,
        SumAt = RuntimeContext.Scratch + 4, SumLeft = RuntimeContext.Scratch + 12,
        Quote = RuntimeContext.Scratch + 24, Ttl = RuntimeContext.Scratch + 32;

    public static string Label(RejectVerdict r) => $".reject_{(int)r.Type}_{r.IcmpCode}";

    public void Emit(RejectVerdict r)
    {
        asm.Label(Label(r));
        asm.Comment(r.ToString());
        var drop = asm.NewLabel("reject_drop");
        var ipv6 = asm.NewLabel("reject_ipv6");
        EmitEthernet(drop);
        asm.Emit(Asm.JeqImm(R3, RuntimeContext.EtherTypeIpv6, ipv6), Asm.JneImm(R3, RuntimeContext.EtherTypeIpv4, drop));
        EmitIpv4Header(drop);
        if (r.Type == RejectType.TcpReset) EmitTcpReset(drop);
        else EmitUnreachable(r.Icmpv4Code, drop);
        asm.Label(ipv6);
        EmitIpv6Header(drop);
        if (r.Type == RejectType.TcpReset) EmitTcpReset6(drop);
        else EmitUnreachable6(r.Icmpv6Code, drop);
        asm.Label(drop);
        asm.Emit(Asm.Mov64Imm(R0, dropCode), Asm.Exit());
    }

    void Reload() => asm.Emit(Asm.LdxW(R7, R6, 0), Asm.LdxW(R8, R6, 4));

    /// <summary>
    /// Ethernet checks of nft_reject_netdev_eval: saves the MAC addresses, the network header's offset
    /// and skb->len (what follows the network header); leaves the EtherType in R3.
    /// </summary>
    void EmitEthernet(string drop)
    {
        Reload();
        var eth = flavor.EmitAccess(asm, null, 0, 14, drop);
        asm.Emit(Asm.LdxB(R0, eth.Pointer, 0), Asm.JsetImm(R0, 1, drop), // broadcast or multicast destination
            Asm.LdxW(R0, eth.Pointer, 0), Asm.StxW(R10, MacDst, R0), Asm.LdxH(R0, eth.Pointer, 4), Asm.StxH(R10, MacDst + 4, R0),
            Asm.LdxW(R0, eth.Pointer, 6), Asm.StxW(R10, MacSrc, R0), Asm.LdxH(R0, eth.Pointer, 10), Asm.StxH(R10, MacSrc + 4, R0),
            Asm.LdxH(R3, eth.Pointer, 12), Asm.ToBigEndian(R3, 16), Asm.StW(R10, L3, 14));
        var untagged = asm.NewLabel("reject_untagged");
        asm.Emit(Asm.JeqImm(R3, RuntimeContext.EtherTypeVlan, untagged + "_tag"), Asm.JneImm(R3, RuntimeContext.EtherTypeQinQ, untagged));
        asm.Label(untagged + "_tag");
        // the stack removed one tag before the ingress hook: the kernel sees (and answers) what follows, untagged
        var tag = flavor.EmitAccess(asm, null, 16, 2, drop);
        asm.Emit(Asm.LdxH(R3, tag.Pointer, 16), Asm.ToBigEndian(R3, 16), Asm.StW(R10, L3, 18));
        asm.Label(untagged);
        asm.Emit(Asm.Mov64Reg(R0, R8), Asm.Sub64Reg(R0, R7), Asm.LdxW(R1, R10, L3), Asm.Sub64Reg(R0, R1), Asm.StxW(R10, Len, R0));
    }

    /// <summary>nf_reject_iphdr_validate, then the fragment check both replies make; saves what the reply needs.</summary>
    void EmitIpv4Header(string drop)
    {
        var ip = flavor.EmitAccess(asm, L3, 0, 20, drop);
        var p = ip.Pointer;
        var o = ip.Offset;
        asm.Emit(Asm.LdxB(R0, p, o), Asm.Mov64Reg(R3, R0), Asm.And64Imm(R3, 0x0f), Asm.Rsh64Imm(R0, 4),
            Asm.JneImm(R0, 4, drop), Asm.JltImm(R3, 5, drop), Asm.Lsh64Imm(R3, 2), Asm.StxW(R10, Ihl, R3),
            Asm.LdxH(R4, p, (short)(o + 2)), Asm.ToBigEndian(R4, 16), Asm.StxW(R10, TotLen, R4),
            Asm.LdxW(R5, R10, Len), Asm.JgtReg(R4, R5, drop), Asm.JltReg(R4, R3, drop),
            Asm.LdxH(R4, p, (short)(o + 6)), Asm.ToBigEndian(R4, 16), Asm.JsetImm(R4, 0x1fff, drop),
            Asm.LdxB(R0, p, (short)(o + 9)), Asm.StxW(R10, Proto, R0),
            Asm.LdxW(R0, p, (short)(o + 12)), Asm.StxW(R10, Saddr, R0),
            Asm.LdxW(R0, p, (short)(o + 16)), Asm.StxW(R10, Daddr, R0),
            // the transport header's offset in the frame
            Asm.LdxW(R0, R10, L3), Asm.Add64Reg(R0, R3), Asm.StxW(R10, Cursor, R0));
        EmitDefaultTtl();
    }

    /// <summary>net->ipv4.sysctl_ip_default_ttl of the receiving device's namespace, read per packet as the kernel does.</summary>
    void EmitDefaultTtl()
    {
        EmitNamespace();
        asm.Emit(Asm.LdxB(R0, R1, (short)(Bytes("net", "ipv4") + Bytes("netns_ipv4", "sysctl_ip_default_ttl"))), Asm.StxW(R10, Ttl, R0));
        Reload();
    }

    /// <summary>R1 = the receiving device's struct net (clobbers R0-R5: reload the packet pointers after).</summary>
    void EmitNamespace() =>
        asm.Emit(Asm.Mov64Reg(R1, R6), Asm.CallKfunc(VmlinuxBtf.FuncId("bpf_cast_to_kern_ctx")),
            Asm.LdxDW(R1, R0, Bytes("xdp_buff", "rxq")), Asm.LdxDW(R1, R1, Bytes("xdp_rxq_info", "dev")),
            Asm.LdxDW(R1, R1, Bytes("net_device", "nd_net")));

    static short Bytes(string s, string m) => (short)(VmlinuxBtf.Member(s, m).BitOffset / 8);

    /// <summary>nf_reject_ip_tcphdr_get and nf_reject_ip_tcphdr_put.</summary>
    void EmitTcpReset(string drop)
    {
        asm.Emit(Asm.LdxW(R0, R10, Proto), Asm.JneImm(R0, 6, drop));
        EmitSaveTcpHeader(drop);
        // nf_ip_checksum over skb->len (not yet trimmed to tot_len) with the pseudo-header
        asm.Emit(Asm.LdxW(R0, R10, L3), Asm.StxW(R10, SumFrom, R0), Asm.LdxW(R0, R10, Len), Asm.StxW(R10, SumLen, R0),
            Asm.LdxW(R1, R10, Ihl), Asm.Sub64Reg(R0, R1), Asm.Mov64Imm(R2, 6));
        EmitPseudoHeader(Saddr, Daddr);
        EmitSum(drop);
        EmitFoldedIsValid(drop);

        // 14 + 20 + 20 bytes: drop a tag, then cut what follows the TCP header
        var f = EmitReplyFrame(headers: 14, keep: 40, drop);
        EmitEthernetAndIp(f, protocol: 6);
        asm.Emit(Asm.StH(f, 16, 0x2800)); // tot_len 40
        EmitRstHeader(f, at: 34, networkHeaderLength: Ihl);
        // TCP checksum over the pseudo-header (new addresses) and the 20-byte header
        asm.Emit(Asm.StW(R10, SumFrom, 34), Asm.StW(R10, SumLen, 20), Asm.Mov64Imm(R0, 20), Asm.Mov64Imm(R2, 6));
        EmitPseudoHeader(Daddr, Saddr);
        EmitSum(drop);
        EmitStoreChecksum(50, drop);
        EmitIpChecksum(drop);
        asm.Emit(Asm.Mov64Imm(R0, XdpTx), Asm.Exit());
    }

    /// <summary>The TCP header at Cursor (20 bytes there, checked by the caller): saved for the reset; no RST for RST.</summary>
    void EmitSaveTcpHeader(string drop)
    {
        var p = flavor.EmitAccess(asm, Cursor, 0, 20, drop).Pointer;
        asm.Emit(Asm.LdxB(R0, p, 13), Asm.JsetImm(R0, 0x04, drop), Asm.StxW(R10, TcpFlags, R0),
            Asm.LdxW(R0, p, 0), Asm.StxW(R10, Ports, R0), Asm.LdxW(R0, p, 4), Asm.StxW(R10, Seq, R0),
            Asm.LdxW(R0, p, 8), Asm.StxW(R10, AckSeq, R0),
            Asm.LdxB(R0, p, 12), Asm.Rsh64Imm(R0, 4), Asm.Lsh64Imm(R0, 2), Asm.StxW(R10, Doff, R0));
    }

    /// <summary>
    /// The reset's 20-byte TCP header at frame offset <paramref name="at"/>, checksum 0, as
    /// nf_reject_ip_tcphdr_put and nf_reject_ip6_tcphdr_put write it: seq = the segment's ack if it has
    /// ACK, else RST|ACK with ack = seq + SYN + FIN + payload (skb->len - network headers - TCP header).
    /// </summary>
    void EmitRstHeader(Register f, short at, short networkHeaderLength)
    {
        asm.Emit(Asm.LdxH(R0, R10, Ports + 2), Asm.StxH(f, at, R0), Asm.LdxH(R0, R10, Ports), Asm.StxH(f, (short)(at + 2), R0),
            Asm.StW(f, (short)(at + 4), 0), Asm.StW(f, (short)(at + 8), 0), Asm.StB(f, (short)(at + 12), 0x50),
            Asm.StW(f, (short)(at + 14), 0), Asm.StH(f, (short)(at + 18), 0));
        var noAck = asm.NewLabel("rst_noack");
        var flagsDone = asm.NewLabel("rst_flags");
        asm.Emit(Asm.LdxW(R0, R10, TcpFlags), Asm.JsetImm(R0, 0x10, noAck + "_acked"), Asm.Ja(noAck));
        asm.Label(noAck + "_acked");
        asm.Emit(Asm.LdxW(R0, R10, AckSeq), Asm.StxW(f, (short)(at + 4), R0), Asm.StB(f, (short)(at + 13), 0x04), Asm.Ja(flagsDone));
        asm.Label(noAck);
        // with u32 wrap-around
        asm.Emit(Asm.LdxW(R1, R10, Seq), Asm.ToBigEndian(R1, 32),
            Asm.Mov64Reg(R2, R0), Asm.Rsh64Imm(R2, 1), Asm.And64Imm(R2, 1), Asm.Add64Reg(R1, R2),
            Asm.Mov64Reg(R2, R0), Asm.And64Imm(R2, 1), Asm.Add64Reg(R1, R2),
            Asm.LdxW(R2, R10, Len), Asm.Add64Reg(R1, R2), Asm.LdxW(R2, R10, networkHeaderLength), Asm.Sub64Reg(R1, R2),
            Asm.LdxW(R2, R10, Doff), Asm.Sub64Reg(R1, R2), Asm.ToBigEndian(R1, 32), Asm.StxW(f, (short)(at + 8), R1),
            Asm.StB(f, (short)(at + 13), 0x14));
        asm.Label(flagsDone);
    }

    /// <summary>nf_reject_skb_v4_unreach.</summary>
    void EmitUnreachable(byte code, string drop)
    {
        // nf_skb_is_icmp_unreach: the type byte right after a 20-byte header, if the packet has it
        var notUnreach = asm.NewLabel("not_unreach");
        asm.Emit(Asm.LdxW(R0, R10, Proto), Asm.JneImm(R0, 1, notUnreach), Asm.LdxW(R0, R10, Len), Asm.JleImm(R0, 20, notUnreach));
        var t = flavor.EmitAccess(asm, L3, 20, 1, drop);
        asm.Emit(Asm.LdxB(R0, t.Pointer, t.Offset), Asm.JeqImm(R0, 3, drop));
        asm.Label(notUnreach);
        asm.Emit(Asm.LdxW(R0, R10, Len), Asm.StxW(R10, Quote, R0));
        using (asm.SkipIf(l => Asm.JleImm(R0, IcmpQuote, l)))
            asm.Emit(Asm.StW(R10, Quote, IcmpQuote));

        // after pskb_trim_rcsum: skb->len is tot_len; nf_reject_verify_csum says which protocols are checked
        // (GRE, AH, ESP, SCTP, UDP-Lite: not; DCCP is checked since the kernel dropped it from that list)
        var verify = asm.NewLabel("unreach_verify");
        var verified = asm.NewLabel("unreach_verified");
        asm.Emit(Asm.LdxW(R0, R10, Proto));
        foreach (var unchecked_ in new[] { 47, 51, 50, 132, 136 }) asm.Emit(Asm.JeqImm(R0, unchecked_, verified));
        asm.Emit(Asm.JneImm(R0, 17, verify),
            // UDP: no checksum (0) is not verified; a header cut short is
            Asm.LdxW(R1, R10, TotLen), Asm.LdxW(R2, R10, Ihl), Asm.Sub64Reg(R1, R2), Asm.JltImm(R1, 8, verify));
        var udp = flavor.EmitAccess(asm, Cursor, 6, 2, drop);
        asm.Emit(Asm.LdxH(R0, udp.Pointer, udp.Offset), Asm.JeqImm(R0, 0, verified));
        asm.Label(verify);
        var pseudo = asm.NewLabel("unreach_pseudo");
        var sum = asm.NewLabel("unreach_sum");
        asm.Emit(Asm.LdxW(R0, R10, L3), Asm.StxW(R10, SumFrom, R0), Asm.LdxW(R0, R10, TotLen), Asm.StxW(R10, SumLen, R0),
            Asm.Mov64Imm(R9, 0), Asm.LdxW(R2, R10, Proto), Asm.JeqImm(R2, 6, pseudo), Asm.JeqImm(R2, 17, pseudo), Asm.Ja(sum));
        asm.Label(pseudo);
        asm.Emit(Asm.LdxW(R1, R10, Ihl), Asm.Sub64Reg(R0, R1));
        EmitPseudoHeader(Saddr, Daddr);
        asm.Label(sum);
        EmitSum(drop);
        EmitFoldedIsValid(drop);
        asm.Label(verified);

        // 14 + 20 + 8 bytes in front of the original network header, then at most IcmpQuote bytes of it
        EmitReplyFrame(headers: 42, keep: null, drop);
        EmitEthernetAndIp(R4, protocol: 1);
        asm.Emit(Asm.LdxW(R0, R10, Quote), Asm.Add64Imm(R0, 28), Asm.ToBigEndian(R0, 16), Asm.StxH(R4, 16, R0),
            Asm.StB(R4, 34, 3), Asm.StB(R4, 35, code), Asm.StH(R4, 36, 0), Asm.StW(R4, 38, 0));
        asm.Emit(Asm.StW(R10, SumFrom, 34), Asm.LdxW(R0, R10, Quote), Asm.Add64Imm(R0, 8), Asm.StxW(R10, SumLen, R0), Asm.Mov64Imm(R9, 0));
        EmitSum(drop);
        EmitStoreChecksum(36, drop);
        EmitIpChecksum(drop);
        asm.Emit(Asm.Mov64Imm(R0, XdpTx), Asm.Exit());
    }

    /// <summary>Ethernet header back to the sender and the IPv4 header of nf_reject_iphdr_put, but tot_len and the checksum.</summary>
    void EmitEthernetAndIp(Register f, int protocol) =>
        asm.Emit(Asm.LdxW(R0, R10, MacSrc), Asm.StxW(f, 0, R0), Asm.LdxH(R0, R10, MacSrc + 4), Asm.StxH(f, 4, R0),
            Asm.LdxW(R0, R10, MacDst), Asm.StxW(f, 6, R0), Asm.LdxH(R0, R10, MacDst + 4), Asm.StxH(f, 10, R0),
            Asm.StH(f, 12, 0x0008), // ETH_P_IP
            Asm.StB(f, 14, 0x45), Asm.StB(f, 15, 0), Asm.StH(f, 18, 0), Asm.StH(f, 20, 0x0040), // id 0, DF
            Asm.LdxW(R0, R10, Ttl), Asm.StxB(f, 22, R0), Asm.StB(f, 23, protocol), Asm.StH(f, 24, 0),
            Asm.LdxW(R0, R10, Daddr), Asm.StxW(f, 26, R0), Asm.LdxW(R0, R10, Saddr), Asm.StxW(f, 30, R0));

    /// <summary>
    /// Resizes the frame into the reply's: <paramref name="headers"/> bytes in front of the original network
    /// header, then <paramref name="keep"/> bytes from it (null: the Quote slot's count). Returns R4 = the
    /// frame's start, <paramref name="headers"/> (+ keep) bytes checked.
    /// </summary>
    Register EmitReplyFrame(int headers, int? keep, string drop)
    {
        EmitAdjustHead(l3Minus: headers, drop);
        asm.Emit(keep is { } k ? Asm.Mov64Imm(R2, k) : Asm.LdxW(R2, R10, Quote), Asm.LdxW(R0, R10, Len), Asm.Sub64Reg(R2, R0));
        EmitAdjustTail(drop);
        Reload();
        asm.Emit(Asm.Mov64Reg(R4, flavor.EmitAccess(asm, null, 0, headers + (keep ?? 0), drop).Pointer));
        return R4;
    }

    /// <summary>bpf_xdp_adjust_head by (network header offset - l3Minus): the reply's headers end where the original's network header began.</summary>
    void EmitAdjustHead(int l3Minus, string drop) =>
        asm.Emit(Asm.LdxW(R2, R10, L3), Asm.Alu64Imm(AluOp.Sub, R2, l3Minus), Asm.Mov64Reg(R1, R6),
            Asm.Call(HelperFunc.XdpAdjustHead), Asm.JneImm(R0, 0, drop));

    /// <summary>bpf_xdp_adjust_tail by R2 (never positive here).</summary>
    void EmitAdjustTail(string drop) =>
        asm.Emit(Asm.Mov64Reg(R1, R6), Asm.Call(HelperFunc.XdpAdjustTail), Asm.JneImm(R0, 0, drop));

    /// <summary>R9 = the pseudo-header's sum (csum_tcpudp_nofold): addresses from the two slots, protocol R2, length R0.</summary>
    void EmitPseudoHeader(short source, short destination) =>
        asm.Emit(Asm.LdxW(R9, R10, source), Asm.LdxW(R3, R10, destination), Asm.Add64Reg(R9, R3),
            Asm.Lsh64Imm(R2, 8), Asm.Add64Reg(R9, R2), Asm.ToBigEndian(R0, 16), Asm.Add64Reg(R9, R0));

    /// <summary>
    /// Adds to R9 the bytes [SumFrom, SumFrom + SumLen) of the frame as 16-bit words in the machine's order
    /// (a ones' complement sum is the same in either order once folded and stored the same way): the
    /// trailing 1-3 bytes first, then a loop over 32-bit words.
    /// </summary>
    void EmitSum(string drop)
    {
        var loop = asm.NewLabel("sum_loop");
        var done = asm.NewLabel("sum_done");
        asm.Emit(Asm.LdxW(R1, R10, SumFrom), Asm.And64Imm(R1, RuntimeContext.MaxOffset), Asm.Add64Reg(R1, R7),
            Asm.LdxW(R2, R10, SumLen), Asm.JgtImm(R2, MaxFrame, drop),
            Asm.Mov64Reg(R3, R2), Asm.And64Imm(R3, 3), Asm.Rsh64Imm(R2, 2),
            Asm.Mov64Reg(R4, R2), Asm.Lsh64Imm(R4, 2), Asm.Add64Reg(R4, R1),
            Asm.LdxW(R0, R10, SumFrom), Asm.StxW(R10, SumAt, R0), Asm.StxW(R10, SumLeft, R2));
        var odd = asm.NewLabel("sum_odd");
        asm.Emit(Asm.JsetImm(R3, 2, odd + "_half"), Asm.Ja(odd));
        asm.Label(odd + "_half");
        asm.Emit(Asm.Mov64Reg(R5, R4), Asm.Add64Imm(R5, 2), Asm.JgtReg(R5, R8, drop),
            Asm.LdxH(R0, R4, 0), Asm.Add64Reg(R9, R0), Asm.Add64Imm(R4, 2));
        asm.Label(odd);
        asm.Emit(Asm.JsetImm(R3, 1, odd + "_byte"), Asm.Ja(loop));
        asm.Label(odd + "_byte");
        asm.Emit(Asm.Mov64Reg(R5, R4), Asm.Add64Imm(R5, 1), Asm.JgtReg(R5, R8, drop),
            Asm.LdxB(R0, R4, 0), Asm.Add64Reg(R9, R0));
        // the words: where the next one is and how many are left live in slots the verifier does not
        // track (SumAt, SumLeft), so iterations look alike and it stops at the may_goto after one or two
        asm.Label(loop);
        asm.Emit(Asm.MayGoto(drop), Asm.LdxW(R2, R10, SumLeft), Asm.JeqImm(R2, 0, done),
            Asm.Alu64Imm(AluOp.Sub, R2, 1), Asm.StxW(R10, SumLeft, R2),
            Asm.LdxW(R1, R10, SumAt), Asm.And64Imm(R1, RuntimeContext.MaxOffset), Asm.Mov64Reg(R0, R1), Asm.Add64Imm(R0, 4), Asm.StxW(R10, SumAt, R0),
            Asm.Add64Reg(R1, R7), Asm.Mov64Reg(R0, R1), Asm.Add64Imm(R0, 4), Asm.JgtReg(R0, R8, drop),
            Asm.LdxW(R0, R1, 0), Asm.Add64Reg(R9, R0), Asm.Ja(loop));
        asm.Label(done);
    }

    /// <summary>Folds R9 to 16 bits.</summary>
    void EmitFold()
    {
        for (var i = 0; i < 4; i++)
            asm.Emit(Asm.Mov64Reg(R0, R9), Asm.Rsh64Imm(R0, 16), Asm.And64Imm(R9, 0xffff), Asm.Add64Reg(R9, R0));
    }

    /// <summary>A received checksum is right when everything it covers sums to 0xffff (csum_fold gives 0).</summary>
    void EmitFoldedIsValid(string drop)
    {
        EmitFold();
        asm.Emit(Asm.JneImm(R9, 0xffff, drop));
    }

    /// <summary>Stores the complement of the folded R9 at frame offset <paramref name="at"/>.</summary>
    void EmitStoreChecksum(int at, string drop)
    {
        EmitFold();
        asm.Emit(Asm.Alu64Imm(AluOp.Xor, R9, 0xffff));
        var c = flavor.EmitAccess(asm, null, at, 2, drop);
        asm.Emit(Asm.StxH(c.Pointer, c.Offset, R9));
    }

    void EmitIpChecksum(string drop)
    {
        asm.Emit(Asm.StW(R10, SumFrom, 14), Asm.StW(R10, SumLen, 20), Asm.Mov64Imm(R9, 0));
        EmitSum(drop);
        EmitStoreChecksum(24, drop);
    }
}
