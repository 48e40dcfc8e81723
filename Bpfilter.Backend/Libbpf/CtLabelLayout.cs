namespace Bpfilter.Backend.Libbpf;

/// <summary>
/// Where the running kernel keeps a conntrack entry's labels, as nf_ct_labels_find finds them: the extension at
/// <c>ext + ext->offset[NF_CT_EXT_LABELS]</c> when <c>nf_conn.ext</c> is set and that offset is not 0. That is the
/// whole lookup only while <c>struct nf_ct_ext</c> has no <c>gen_id</c> (kernels that have one also compare it with
/// the global <c>nf_conntrack_ext_genid</c>, which BPF does not read here); and nft loads 16 bytes
/// (NF_CT_LABELS_MAX_SIZE), which must be all of <c>struct nf_conn_labels</c>.
/// </summary>
public static class CtLabelLayout
{
    static readonly Lazy<string?> Why = new(Check);

    /// <summary>Null when BPF can read the labels as the kernel does; else why not (the lifter refuses, codegen throws).</summary>
    public static string? Unreadable => Why.Value;

    /// <summary>Offset in struct nf_ct_ext of offset[NF_CT_EXT_LABELS].</summary>
    public static int ExtensionOffsetAt =>
        VmlinuxBtf.MemberPath("nf_ct_ext", $"offset[{VmlinuxBtf.EnumValue("nf_ct_ext_id", "NF_CT_EXT_LABELS")}]");

    static string? Check()
    {
        try
        {
            if (VmlinuxBtf.HasMember("nf_ct_ext", "gen_id"))
                return "this kernel's nf_ct_ext has a gen_id (nf_ct_ext_find also compares it with nf_conntrack_ext_genid, " +
                    "which bpfilter-nft does not read)";
            if (VmlinuxBtf.StructSize("nf_conn_labels") != 16 || VmlinuxBtf.MemberPath("nf_conn_labels", "bits") != 0)
                return "this kernel's struct nf_conn_labels is not the 16 label bytes nft loads";
            _ = VmlinuxBtf.MemberPath("nf_conn", "ext") + ExtensionOffsetAt;
            return null;
        }
        catch (Exception e) when (e is BpfException or DllNotFoundException or EntryPointNotFoundException)
        {
            return $"the kernel's BTF does not describe the label extension ({e.Message})";
        }
    }
}
