namespace Bpfilter.Backend.Bpf;

/// <summary>BPF helper ids (enum bpf_func_id in linux/bpf.h), the ones the code generator uses.</summary>
public enum HelperFunc
{
    MapLookupElem = 1,
    MapUpdateElem = 2,
    MapDeleteElem = 3,
    KtimeGetNs = 5,
    TracePrintk = 6,
    GetSmpProcessorId = 8,
    SkbLoadBytes = 26,
    TailCall = 12,
    XdpAdjustHead = 44,
    XdpAdjustTail = 65,
    ProbeReadKernel = 113,
    Jiffies64 = 118,
    SkbLoadBytesRelative = 68,
    XdpGetBuffLen = 188,
    Loop = 181,
    SpinLock = 93,
    SpinUnlock = 94,
    DynptrRead = 201,
    RingbufOutput = 130,
    RingbufReserve = 131,
    RingbufSubmit = 132,
    RingbufDiscard = 133,
    XdpLoadBytes = 189,
}
