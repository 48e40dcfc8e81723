using Nft.Netlink;
using static Bpfilter.Integration.Tests.Robustness.NfWire;
using R = Bpfilter.Integration.Tests.Robustness.RequestCorpus;

namespace Bpfilter.Integration.Tests.Robustness;

/// <summary>
/// Rules whose expressions are each wrong in one way the kernel checks (the shapes the fuzzer found
/// accepted by the daemon), as named, readable cases: a missing attribute, a bad register, an unknown
/// base, empty or oversized data, an unknown expression, too many expressions.
/// </summary>
static class MalformedRules
{
    public static readonly Dictionary<string, Action<NetlinkWriter>> Cases = new()
    {
        ["payload-without-offset"] = w => R.Expr(w, "payload", x =>
        {
            x.PutU32Be(PayloadDreg, Reg1);
            x.PutU32Be(PayloadBase, BaseNetwork);
            x.PutU32Be(PayloadLen, 4);
        }),
        ["payload-unknown-base"] = w => R.Expr(w, "payload", x =>
        {
            x.PutU32Be(PayloadDreg, Reg1);
            x.PutU32Be(PayloadBase, 0x20001);
            x.PutU32Be(PayloadOffset, 12);
            x.PutU32Be(PayloadLen, 4);
        }),
        ["payload-zero-length"] = w => R.Payload(w, BaseNetwork, 12, 0),
        ["meta-without-register"] = w => R.Expr(w, "meta", x => x.PutU32Be(MetaKey, MetaMark)),
        ["immediate-bad-register"] = w => R.Expr(w, "immediate", x =>
        {
            x.PutU32Be(ImmDreg, 0x123600);
            var d = x.BeginNested(ImmData);
            var v = x.BeginNested(DataVerdict);
            x.PutU32Be(VerdictCode, (uint)NfAccept);
            x.EndNested(v);
            x.EndNested(d);
        }),
        ["jump-to-missing-chain"] = w => R.Immediate(w, NftJump, "nosuch"),
        ["cmp-empty-data"] = w =>
        {
            R.Payload(w, BaseNetwork, 12, 4);
            R.Cmp(w, CmpEq, []);
        },
        ["cmp-data-over-64-bytes"] = w =>
        {
            R.Payload(w, BaseNetwork, 12, 4);
            R.Cmp(w, CmpEq, new byte[80]);
        },
        ["cmp-unknown-op"] = w =>
        {
            R.Payload(w, BaseNetwork, 12, 4);
            R.Cmp(w, 99, [10, 0, 0, 1]);
        },
        ["cmp-reads-unset-register-range"] = w =>
        {
            R.Payload(w, BaseNetwork, 12, 4);
            R.Expr(w, "cmp", x =>
            {
                x.PutU32Be(CmpSreg, 99);
                x.PutU32Be(CmpOp, CmpEq);
                var d = x.BeginNested(CmpData);
                x.PutBytes(DataValue, [10, 0, 0, 1]);
                x.EndNested(d);
            });
        },
        ["unknown-expression"] = w => R.Expr(w, "frobnicate", x => x.PutU32Be(1, 1)),
        ["expression-list-wrong-type"] = w =>
        {
            var e = w.BeginNested(2);
            w.PutString(ExprName, "counter");
            w.EndNested(e);
        },
        ["too-many-expressions"] = w =>
        {
            for (int i = 0; i < 130; i++) R.Counter(w);
        },
    };
}
