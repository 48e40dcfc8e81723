namespace Bpfilter.Integration.Tests.Packets;

/// <summary>The case file format's directives (README of corpus/packets), parsed from text.</summary>
public class PacketCaseTests
{
    const string Body = "ruleset <<EOF\ntable ip t {\n}\nEOF\npacket p from peer expect pass: ip4 src=198.19.0.1 dst=198.18.1.1 / udp\n";

    [Fact]
    public void DaemonRefusesIsReadWithItsText()
    {
        var c = PacketCase.Parse("x", "daemon-refuses \"expression 'exthdr' (ip option rr exists)\"\n" + Body, "x.nft");
        Assert.Equal("expression 'exthdr' (ip option rr exists)", c.DaemonRefuses);
        Assert.Single(c.Packets);
        Assert.Null(PacketCase.Parse("y", Body, "y.nft").DaemonRefuses);
    }

    [Theory]
    [InlineData("daemon-refuses exthdr\n")]
    [InlineData("daemon-refuses \"\"\n")]
    [InlineData("daemon-refuses \"a\"b\"\n")]
    [InlineData("daemon-refuses \"a\"\ndaemon-refuses \"b\"\n")]
    public void MalformedOrRepeatedDaemonRefusesIsAnError(string directive)
    {
        var e = Assert.Throws<FormatException>(() => PacketCase.Parse("x", directive + Body, "x.nft"));
        Assert.Contains("daemon-refuses", e.Message);
    }
}
