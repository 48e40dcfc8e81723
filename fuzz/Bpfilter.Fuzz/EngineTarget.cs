using Nft.Bytecode;
using Nft.Netlink;

namespace Bpfilter.Fuzz;

/// <summary>
/// The transaction engine: a fresh engine gets each request of the input (see <see cref="RequestSequence"/>)
/// in turn. Any exception escaping Process is a crash (the server would reset the client), and so is a
/// reply datagram that is not a sequence of well-formed netlink messages: an NLMSG_ERROR too short for
/// its errno and the offending header, a positive errno, or an nf_tables message its own decoder refuses.
/// The first input byte's low bit chooses the daemon's scope (refusing out-of-scope objects, as
/// bpfilterd does) or the protocol tests' full emulation, so both are explored.
/// </summary>
public sealed class EngineTarget : IFuzzTarget
{
    const uint PortId = 4242;

    public string Name => "engine";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty) return;
        var process = EngineUnderTest.Create(refuseOutOfScope: (input[0] & 1) == 0);
        int n = 0;
        foreach (var request in RequestSequence.Split(input[1..]))
        {
            IReadOnlyList<byte[]> replies;
            try { replies = process(request, PortId); }
            catch (Exception e) { throw new FuzzFinding($"request {n}: {e.GetType().Name} escaped Process: {e.Message}", e); }
            foreach (var datagram in replies) CheckDatagram(datagram, n);
            n++;
        }
    }

    static void CheckDatagram(byte[] datagram, int request)
    {
        var r = new NetlinkMessageReader(datagram);
        int count = 0;
        while (r.TryRead(out var m))
        {
            count++;
            if (m.Header.Type == NlMsgType.Error) CheckError(m, request);
            else if (m.IsNfTables && NftMessage.RecordType((NftMsgType)Nfnl.Msg(m.Header.Type)) is not null)
            {
                try { _ = NftMessage.Decode(m); }
                catch (NetlinkException e)
                {
                    throw new FuzzFinding($"request {request}: reply {(NftMsgType)Nfnl.Msg(m.Header.Type)} does not decode " +
                        $"(errno {e.Errno}, {e.ExtAck}): {Convert.ToHexString(m.Bytes)}", e);
                }
            }
        }
        if (count == 0 || r.Malformed || r.Remaining != 0)
            throw new FuzzFinding($"request {request}: reply datagram is not well-formed netlink: {Convert.ToHexString(datagram)}");
    }

    static void CheckError(NetlinkMessage m, int request)
    {
        var body = m.Body;
        if (body.Length < 4 + NlMsgHeader.Size)
            throw new FuzzFinding($"request {request}: NLMSG_ERROR of {body.Length} bytes lacks errno and header: {Convert.ToHexString(m.Bytes)}");
        int errno = BitConverter.ToInt32(body);
        if (errno > 0)
            throw new FuzzFinding($"request {request}: NLMSG_ERROR with positive errno {errno}");
    }
}
