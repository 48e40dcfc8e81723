using Bpfilter.Backend.Bpf;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// The IPv6 replies of netdev's reject (EtherType 0x86dd), as nf_reject_skb_v6_tcp_reset and
/// nf_reject_skb_v6_unreach build them: traffic class and flow label 0, hop limit
/// net->ipv6.devconf_all->hop_limit of the device's namespace (read per packet), addresses swapped;
/// the TCP reset and the ICMPv6 message carry their full checksums. Unlike nf_send_reset6 the netdev
/// path makes no unicast check of the addresses. The transport header is found as ipv6_skip_exthdr
/// finds it, over every extension header the frame holds.
/// </summary>
internal sealed partial class XdpReject
{
    /// <summary>"As much of invoking packet as possible without the ICMPv6 packet exceeding the minimum IPv6 MTU": 1280 - 40 - 8.</summary>
    const int Icmpv6Quote = 1220;

    // The extension-header walk keeps its state in upper halves of 8-byte slots, which the verifier does
    // not track: iterations look alike, so the verifier stops at the loop's may_goto after one or two,
    // and the code after the loop is verified once.
    // Next (next header) and Fo (fragment field, host order) reuse IPv4's TotLen and Daddr; Cursor is shared.
    const short Next = S + 52, Fo = S + 20;
    /// <summary>The transport header's offset from the network header (ipv6_skip_exthdr's result), and skb->len after pskb_trim_rcsum.</summary>
    const short Thoff = S + 56, Trimmed = S + 48;
    const short Saddr6 = RuntimeContext.RejectAddresses, Daddr6 = RuntimeContext.RejectAddresses + 16;

    /// <summary>nf_reject_ip6hdr_validate, the hop limit, then ipv6_skip_exthdr.</summary>
    void EmitIpv6Header(string drop)
    {
        var ip = flavor.EmitAccess(asm, L3, 0, 40, drop);
        var p = ip.Pointer;
        var o = ip.Offset;
        asm.Emit(Asm.LdxB(R0, p, o), Asm.Rsh64Imm(R0, 4), Asm.JneImm(R0, 6, drop),
            // payload_len + 40 <= skb->len; pskb_trim_rcsum later trims to it unless it is 0 (a jumbogram's)
            Asm.LdxH(R4, p, (short)(o + 4)), Asm.ToBigEndian(R4, 16), Asm.LdxW(R5, R10, Len), Asm.StxW(R10, Trimmed, R5));
        using (asm.SkipIf(l => Asm.JeqImm(R4, 0, l)))
            asm.Emit(Asm.Add64Imm(R4, 40), Asm.JgtReg(R4, R5, drop), Asm.StxW(R10, Trimmed, R4));
        asm.Emit(Asm.LdxB(R0, p, (short)(o + 6)), Asm.StxW(R10, Next, R0));
        for (short i = 0; i < 32; i += 4)
            asm.Emit(Asm.LdxW(R0, p, (short)(o + 8 + i)), Asm.StxW(R10, (short)(Saddr6 + i), R0));
        asm.Emit(Asm.LdxW(R0, R10, L3), Asm.Add64Imm(R0, 40), Asm.StxW(R10, Cursor, R0));
        EmitNamespace();
        asm.Emit(Asm.LdxDW(R1, R1, (short)(Bytes("net", "ipv6") + Bytes("netns_ipv6", "devconf_all"))),
            Asm.LdxW(R0, R1, Bytes("ipv6_devconf", "hop_limit")), Asm.StxW(R10, Ttl, R0));
        Reload();
        EmitSkipExtensionHeaders(drop);
    }

    /// <summary>
    /// ipv6_skip_exthdr from the fixed header: hop-by-hop, routing, destination options ((n + 1) x 8
    /// bytes), AH ((n + 2) x 4) and a first fragment (8) are skipped; it stops at a non-first fragment
    /// (next header stays 44). "No next header" or a header cut short is its -1, which both replies
    /// answer with nothing: drop. Leaves Next, Fo and Thoff.
    /// </summary>
    void EmitSkipExtensionHeaders(string drop)
    {
        var loop = asm.NewLabel("exthdr_loop");
        var skip = asm.NewLabel("exthdr_skip");
        var options = asm.NewLabel("exthdr_options");
        var advance = asm.NewLabel("exthdr_advance");
        var done = asm.NewLabel("exthdr_done");
        asm.Emit(Asm.StW(R10, Fo, 0));
        asm.Label(loop);
        // a frame holds at most MaxFrame / 8 headers, far below the budget: never taken
        asm.Emit(Asm.MayGoto(drop), Asm.LdxW(R3, R10, Next));
        foreach (var h in new[] { 0, 43, 44, 51, 60 }) asm.Emit(Asm.JeqImm(R3, h, skip));
        asm.Emit(Asm.JeqImm(R3, 59, drop), Asm.Ja(done));
        asm.Label(skip);
        var h2 = flavor.EmitAccess(asm, Cursor, 0, 2, drop);
        asm.Emit(Asm.LdxB(R4, h2.Pointer, h2.Offset), Asm.LdxB(R5, h2.Pointer, (short)(h2.Offset + 1)),
            Asm.JneImm(R3, 44, options));
        var frag = flavor.EmitAccess(asm, Cursor, 2, 2, drop);
        asm.Emit(Asm.LdxH(R0, frag.Pointer, frag.Offset), Asm.ToBigEndian(R0, 16), Asm.StxW(R10, Fo, R0),
            Asm.JsetImm(R0, 0xfff8, done), Asm.Mov64Imm(R5, 8), Asm.Ja(advance));
        asm.Label(options);
        using (asm.SkipIf(l => Asm.JneImm(R3, 51, l)))
            asm.Emit(Asm.Add64Imm(R5, 2), Asm.Lsh64Imm(R5, 2), Asm.Ja(advance));
        asm.Emit(Asm.Add64Imm(R5, 1), Asm.Lsh64Imm(R5, 3));
        asm.Label(advance);
        asm.Emit(Asm.StxW(R10, Next, R4), Asm.LdxW(R0, R10, Cursor), Asm.Add64Reg(R0, R5), Asm.StxW(R10, Cursor, R0), Asm.Ja(loop));
        asm.Label(done);
        asm.Emit(Asm.LdxW(R0, R10, Cursor), Asm.LdxW(R1, R10, L3), Asm.Sub64Reg(R0, R1), Asm.StxW(R10, Thoff, R0));
    }

    /// <summary>nf_reject_ip6_tcphdr_get and nf_reject_ip6_tcphdr_put: no fragment check (a first fragment is answered).</summary>
    void EmitTcpReset6(string drop)
    {
        // otcplen = skb->len - tcphoff, untrimmed: trailing bytes count (in the checksum too)
        asm.Emit(Asm.LdxW(R0, R10, Next), Asm.JneImm(R0, 6, drop),
            Asm.LdxW(R0, R10, Len), Asm.LdxW(R1, R10, Thoff), Asm.JgtReg(R1, R0, drop), Asm.Sub64Reg(R0, R1), Asm.JltImm(R0, 20, drop));
        EmitSaveTcpHeader(drop);
        // nf_ip6_checksum from tcphoff to skb->len, with the pseudo-header
        asm.Emit(Asm.LdxW(R0, R10, Cursor), Asm.StxW(R10, SumFrom, R0),
            Asm.LdxW(R0, R10, Len), Asm.LdxW(R1, R10, Thoff), Asm.Sub64Reg(R0, R1), Asm.StxW(R10, SumLen, R0), Asm.Mov64Imm(R2, 6));
        EmitPseudoHeader6();
        EmitSum(drop);
        EmitFoldedIsValid(drop);

        // 14 + 40 + 20 bytes
        var f = EmitReplyFrame(headers: 14, keep: 60, drop);
        EmitEthernetAndIpv6(f, nextHeader: 6);
        asm.Emit(Asm.StH(f, 18, 0x1400)); // payload_len 20
        EmitRstHeader(f, at: 54, networkHeaderLength: Thoff);
        asm.Emit(Asm.StW(R10, SumFrom, 54), Asm.StW(R10, SumLen, 20), Asm.Mov64Imm(R0, 20), Asm.Mov64Imm(R2, 6));
        EmitPseudoHeader6();
        EmitSum(drop);
        EmitStoreChecksum(70, drop);
        asm.Emit(Asm.Mov64Imm(R0, XdpTx), Asm.Exit());
    }

    /// <summary>nf_reject_skb_v6_unreach.</summary>
    void EmitUnreachable6(byte code, string drop)
    {
        // nf_skb_is_icmp6_unreach, on the untrimmed packet: no unreachable about an unreachable
        var notUnreach = asm.NewLabel("not_unreach6");
        asm.Emit(Asm.LdxW(R0, R10, Next), Asm.JneImm(R0, 58, notUnreach), Asm.LdxW(R0, R10, Fo), Asm.JneImm(R0, 0, notUnreach),
            Asm.LdxW(R0, R10, Thoff), Asm.LdxW(R1, R10, Len), Asm.JgeReg(R0, R1, notUnreach));
        var t = flavor.EmitAccess(asm, Cursor, 0, 1, drop);
        asm.Emit(Asm.LdxB(R0, t.Pointer, t.Offset), Asm.JeqImm(R0, 1, drop));
        asm.Label(notUnreach);
        // the quote's length is taken before the trim: trailing bytes are quoted
        asm.Emit(Asm.LdxW(R0, R10, Len), Asm.StxW(R10, Quote, R0));
        using (asm.SkipIf(l => Asm.JleImm(R0, Icmpv6Quote, l)))
            asm.Emit(Asm.StW(R10, Quote, Icmpv6Quote));

        // nf_reject_v6_csum_ok after the trim: ipv6_skip_exthdr again (it reads nothing at or past the
        // transport header, so it fails on the trimmed packet only where the transport header is cut
        // off), not a non-first fragment, then nf_reject_verify_csum and nf_ip6_checksum
        asm.Emit(Asm.LdxW(R0, R10, Thoff), Asm.LdxW(R1, R10, Trimmed), Asm.JgeReg(R0, R1, drop),
            Asm.LdxW(R0, R10, Fo), Asm.JsetImm(R0, 0xfff8, drop));
        var verify = asm.NewLabel("unreach6_verify");
        var verified = asm.NewLabel("unreach6_verified");
        asm.Emit(Asm.LdxW(R0, R10, Next));
        foreach (var unchecked_ in new[] { 47, 51, 50, 132, 136 }) asm.Emit(Asm.JeqImm(R0, unchecked_, verified));
        asm.Emit(Asm.JneImm(R0, 17, verify),
            Asm.LdxW(R1, R10, Trimmed), Asm.LdxW(R2, R10, Thoff), Asm.Sub64Reg(R1, R2), Asm.JltImm(R1, 8, verify));
        var udp = flavor.EmitAccess(asm, Cursor, 6, 2, drop);
        asm.Emit(Asm.LdxH(R0, udp.Pointer, udp.Offset), Asm.JeqImm(R0, 0, verified));
        asm.Label(verify);
        // the pseudo-header whatever the protocol, as nf_ip6_checksum adds it
        asm.Emit(Asm.LdxW(R0, R10, Cursor), Asm.StxW(R10, SumFrom, R0),
            Asm.LdxW(R0, R10, Trimmed), Asm.LdxW(R1, R10, Thoff), Asm.Sub64Reg(R0, R1), Asm.StxW(R10, SumLen, R0),
            Asm.LdxW(R2, R10, Next));
        EmitPseudoHeader6();
        EmitSum(drop);
        EmitFoldedIsValid(drop);
        asm.Label(verified);

        // 14 + 40 + 8 bytes in front of the original network header, then the quote
        EmitReplyFrame(headers: 62, keep: null, drop);
        EmitEthernetAndIpv6(R4, nextHeader: 58);
        asm.Emit(Asm.LdxW(R0, R10, Quote), Asm.Add64Imm(R0, 8), Asm.ToBigEndian(R0, 16), Asm.StxH(R4, 18, R0),
            Asm.StB(R4, 54, 1), Asm.StB(R4, 55, code), Asm.StH(R4, 56, 0), Asm.StW(R4, 58, 0));
        asm.Emit(Asm.StW(R10, SumFrom, 54), Asm.LdxW(R0, R10, Quote), Asm.Add64Imm(R0, 8), Asm.StxW(R10, SumLen, R0), Asm.Mov64Imm(R2, 58));
        EmitPseudoHeader6();
        EmitSum(drop);
        EmitStoreChecksum(56, drop);
        asm.Emit(Asm.Mov64Imm(R0, XdpTx), Asm.Exit());
    }

    /// <summary>Ethernet header back to the sender and the IPv6 header of nf_reject_ip6hdr_put, but payload_len.</summary>
    void EmitEthernetAndIpv6(Register f, int nextHeader)
    {
        asm.Emit(Asm.LdxW(R0, R10, MacSrc), Asm.StxW(f, 0, R0), Asm.LdxH(R0, R10, MacSrc + 4), Asm.StxH(f, 4, R0),
            Asm.LdxW(R0, R10, MacDst), Asm.StxW(f, 6, R0), Asm.LdxH(R0, R10, MacDst + 4), Asm.StxH(f, 10, R0),
            Asm.StH(f, 12, 0xdd86), // ETH_P_IPV6
            Asm.StW(f, 14, 0x60), Asm.StB(f, 20, nextHeader), Asm.LdxW(R0, R10, Ttl), Asm.StxB(f, 21, R0));
        for (short i = 0; i < 16; i += 4)
            asm.Emit(Asm.LdxW(R0, R10, (short)(Daddr6 + i)), Asm.StxW(f, (short)(22 + i), R0),
                Asm.LdxW(R0, R10, (short)(Saddr6 + i)), Asm.StxW(f, (short)(38 + i), R0));
    }

    /// <summary>R9 = the IPv6 pseudo-header's sum: both saved addresses, upper-layer length R0 (under 64 KiB), next header R2.</summary>
    void EmitPseudoHeader6()
    {
        asm.Emit(Asm.Mov64Imm(R9, 0));
        for (short i = 0; i < 32; i += 4)
            asm.Emit(Asm.LdxW(R3, R10, (short)(Saddr6 + i)), Asm.Add64Reg(R9, R3));
        asm.Emit(Asm.Lsh64Imm(R2, 8), Asm.Add64Reg(R9, R2), Asm.ToBigEndian(R0, 16), Asm.Add64Reg(R9, R0));
    }
}
