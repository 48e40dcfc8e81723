namespace Nft.Bytecode.Expressions;

public static partial class ExpressionCodec
{
    /// <summary>The typed kinds, by the name the kernel registers them under.</summary>
    static Dictionary<string, DataDecoder> CreateDecoders() => new(StringComparer.Ordinal)
    {
        ["immediate"] = ImmediateExpr.Decode,
        ["lookup"] = LookupExpr.Decode,
        ["counter"] = CounterExpr.Decode,
        ["objref"] = ObjRefExpr.Decode,
        ["dynset"] = DynsetExpr.Decode,
        ["cmp"] = CmpExpr.Decode,
        ["range"] = RangeExpr.Decode,
        ["payload"] = PayloadExpr.Decode,
        ["meta"] = MetaExpr.Decode,
        ["bitwise"] = BitwiseExpr.Decode,
        ["byteorder"] = ByteorderExpr.Decode,
        ["ct"] = CtExpr.Decode,
        ["exthdr"] = ExthdrExpr.Decode,
        ["limit"] = LimitExpr.Decode,
        ["log"] = LogExpr.Decode,
        ["reject"] = RejectExpr.Decode,
        ["nat"] = NatExpr.Decode,
        ["masq"] = MasqExpr.Decode,
        ["redir"] = RedirExpr.Decode,
        ["quota"] = QuotaExpr.Decode,
        ["fib"] = FibExpr.Decode,
        ["hash"] = HashExpr.Decode,
        ["numgen"] = NumgenExpr.Decode,
        ["rt"] = RtExpr.Decode,
        ["socket"] = SocketExpr.Decode,
        ["tproxy"] = TproxyExpr.Decode,
        ["osf"] = OsfExpr.Decode,
        ["xfrm"] = XfrmExpr.Decode,
        ["synproxy"] = SynproxyExpr.Decode,
        ["connlimit"] = ConnlimitExpr.Decode,
        ["tunnel"] = TunnelExpr.Decode,
        ["last"] = LastExpr.Decode,
        ["dup"] = DupExpr.Decode,
        ["fwd"] = FwdExpr.Decode,
        ["queue"] = QueueExpr.Decode,
        ["notrack"] = NotrackExpr.Decode,
        ["flow_offload"] = FlowOffloadExpr.Decode,
        ["match"] = MatchExpr.Decode,
        ["target"] = TargetExpr.Decode,
        ["inner"] = InnerExpr.Decode,
    };
}
