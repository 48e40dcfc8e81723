using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>Golden listings of generated code: any change to the emitted program shows up here.</summary>
public class GoldenTests
{
    [Fact]
    public void EmptyAcceptChainIsReturnXdpPass()
    {
        var rs = Ruleset(Xdp, Verdict.Accept, []);
        Assert.Equal(
            "    r6 = r1\n" +
            "chain0:\n" +
            ".policy0:\n" +
            "    r0 = 2  ; policy accept\n" +
            "    exit\n",
            ProgramCompiler.Compile(rs, rs.BaseChains.Items).Disassembly);
    }

    /// <summary>Prologue parsing only Ethernet/VLAN (no IP needed), one counted rule, policy, exits.</summary>
    [Fact]
    public void CountedEtherTypeRule()
    {
        var rs = Ruleset(Xdp, Verdict.Accept, [Counted(1, Verdict.Drop, Matcher.Eq(Fields.Ether.Type, U16(0x0800)))]);
        Assert.Equal(Expected + "\n", ProgramCompiler.Compile(rs, rs.BaseChains.Items).Disassembly);
    }

    private const string Expected = """
    r6 = r1
    r7 = *(u32 *)(r6 + 0)
    r8 = *(u32 *)(r6 + 4)
    r0 = 0
    *(u32 *)(r10 - 4) = r0
    *(u32 *)(r10 - 12) = r0
    *(u32 *)(r10 - 20) = r0
    *(u32 *)(r10 - 28) = r0
    *(u32 *)(r10 - 36) = r0
    r1 = r6
    call xdp_get_buff_len
    *(u32 *)(r10 - 44) = r0
    r1 = r7
    r2 = r1
    r2 += 14
    if r2 > r8 goto .parsed0
    r3 = *(u16 *)(r1 + 12)
    r3 = be16 r3
    r0 = 14
    *(u32 *)(r10 - 12) = r0
    *(u32 *)(r10 - 28) = r3
    r0 = *(u32 *)(r10 - 4)
    r0 |= 5
    *(u32 *)(r10 - 4) = r0
    if r3 == 33024 goto .untagged1_tag
    if r3 != 34984 goto .untagged1
.untagged1_tag:
    r4 = r3
    r1 = r7
    r2 = r1
    r2 += 18
    if r2 > r8 goto .parsed0
    r3 = *(u16 *)(r1 + 16)
    r3 = be16 r3
    r0 = 18
    *(u32 *)(r10 - 12) = r0
    *(u32 *)(r10 - 28) = r3
    if r4 != 33024 goto .skip2
    r0 = *(u32 *)(r10 - 4)
    r0 |= 2
    *(u32 *)(r10 - 4) = r0
.skip2:
.untagged1:
.parsed0:
chain0:
    r1 = r7  ; ether type == 0x0800 counter #1 drop
    r2 = r1
    r2 += 14
    if r2 > r8 goto .next4
    r0 = *(u16 *)(r1 + 12)
    r0 = be16 r0
    if r0 != 2048 goto .next4
    *(u32 *)(r10 - 224) = 0
    r2 = r10
    r2 += -224
    r1 = map[counters]
    call map_lookup_elem
    if r0 == 0 goto .nocount5
    r1 = *(u64 *)(r0 + 0)
    r1 += 1
    *(u64 *)(r0 + 0) = r1
    r2 = *(u32 *)(r10 - 44)
    r3 = *(u32 *)(r10 - 12)
    r2 -= r3
    r1 = *(u64 *)(r0 + 8)
    r1 += r2
    *(u64 *)(r0 + 8) = r1
.nocount5:
    r0 = 1
    exit
.next4:
.policy3:
    r0 = 2  ; policy accept
    exit
""";
}
