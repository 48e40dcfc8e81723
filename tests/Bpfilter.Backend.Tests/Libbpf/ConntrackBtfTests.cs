using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Tests.Libbpf;

/// <summary>
/// What the ct key reads rely on: member paths through arrays and the anonymous tuple `dst` struct resolve to
/// the offsets the named members add up to, enum values and members are found by name, the label extension is
/// readable on this kernel, and CONFIG_HZ is parsed from a kernel config.
/// </summary>
public class ConntrackBtfTests
{
    [Fact]
    public void MemberPathAddsUpArrayElementsAndNestedMembers()
    {
        var hash = VmlinuxBtf.StructSize("nf_conntrack_tuple_hash");
        var reply = VmlinuxBtf.Member("nf_conn", "tuplehash").BitOffset / 8 + hash;
        var tuple = VmlinuxBtf.Member("nf_conntrack_tuple_hash", "tuple").BitOffset / 8;
        var src = VmlinuxBtf.Member("nf_conntrack_tuple", "src").BitOffset / 8;
        var l3num = VmlinuxBtf.Member("nf_conntrack_man", "l3num").BitOffset / 8;
        Assert.Equal(reply + tuple + src + l3num, VmlinuxBtf.MemberPath("nf_conn", "tuplehash[1].tuple.src.l3num"));
        // dst is an anonymous struct type: reached through the member name; protonum follows u3 and u
        var dst = VmlinuxBtf.MemberPath("nf_conn", "tuplehash[0].tuple.dst.u3");
        Assert.Equal(dst + 16 + 2, VmlinuxBtf.MemberPath("nf_conn", "tuplehash[0].tuple.dst.protonum"));
        Assert.Equal(dst + hash, VmlinuxBtf.MemberPath("nf_conn", "tuplehash[1].tuple.dst.u3"));
        Assert.Throws<BpfException>(() => VmlinuxBtf.MemberPath("nf_conn", "tuplehash[2].tuple"));
        Assert.Throws<BpfException>(() => VmlinuxBtf.MemberPath("nf_conn", "tuplehash[0].no_such_member"));
    }

    [Fact]
    public void LabelExtensionIsFoundThroughTheBtfOfThisKernel()
    {
        // NF_CT_EXT_LABELS comes after NF_CT_EXT_HELPER (0) and the extensions the kernel's config enables
        var labels = VmlinuxBtf.EnumValue("nf_ct_ext_id", "NF_CT_EXT_LABELS");
        Assert.True(labels > VmlinuxBtf.EnumValue("nf_ct_ext_id", "NF_CT_EXT_HELPER"));
        Assert.Throws<BpfException>(() => VmlinuxBtf.EnumValue("nf_ct_ext_id", "NO_SUCH_EXT"));
        Assert.Equal(VmlinuxBtf.MemberPath("nf_ct_ext", "offset[0]") + labels, CtLabelLayout.ExtensionOffsetAt);
        Assert.True(VmlinuxBtf.HasMember("nf_conn", "ext"));
        Assert.False(VmlinuxBtf.HasMember("nf_ct_ext", "no_such_member"));
        Assert.False(VmlinuxBtf.HasMember("no_such_struct", "ext"));
        // this kernel's nf_ct_ext has no gen_id: the label lookup is ext and offset only
        Assert.Equal(VmlinuxBtf.HasMember("nf_ct_ext", "gen_id"), CtLabelLayout.Unreadable is not null);
    }

    [Theory]
    [InlineData("CONFIG_HZ_250=y\nCONFIG_HZ=250\n", 250)]
    [InlineData("# CONFIG_HZ_PERIODIC is not set\nCONFIG_HZ=1000\n", 1000)]
    [InlineData("CONFIG_HZ_100=y\n", null)]
    [InlineData("CONFIG_HZ=abc\n", null)]
    [InlineData("CONFIG_HZ=0\n", null)]
    public void ParsesConfigHz(string config, int? hz) => Assert.Equal(hz, KernelHz.Parse(new StringReader(config)));
}
