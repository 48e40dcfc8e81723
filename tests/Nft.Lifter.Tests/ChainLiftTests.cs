using Bpfilter.Backend.Ir;
using Nft.Bytecode;

namespace Nft.Lifter.Tests;

/// <summary>
/// Lifting chain by chain: each base chain comes back lifted (with the regular chains and sets it
/// reaches) or refused with the rule and expression, as a value; IR names map back to chain ids; set
/// encoders convert single elements exactly as the lift converted the set's contents.
/// </summary>
public class ChainLiftTests
{
    [Fact]
    public void ARefusedChainIsAResultNamingTheRuleAndExpressionAndTheOthersStillLift()
    {
        var refused = CorpusLoader.Table("refused", "inet", "r");
        var tables = CorpusLoader.Load("hooks").Append(refused).ToList();
        var lift = NftLifter.LiftChains(tables);

        var r = Assert.Single(lift.Chains.OfType<ChainLift.Refused>(), c => c.Chain == new ChainId(NfProto.Inet, "r", "in"));
        var ct = CorpusLoader.RuleByComment(refused, "ct");
        Assert.Equal(new RuleId(new ChainId(NfProto.Inet, "r", "in"), ct.Handle!.Value), r.Refusal.Rule);
        Assert.Equal(0, r.Refusal.ExpressionIndex);
        Assert.Equal($"table inet r chain in rule {ct.Handle}: expression 'ct helper' is not supported by bpfilter-nft (only ct state, direction, status, mark, zone, expiration, label, l3proto, protocol, and original|reply saddr, daddr, ip saddr, ip daddr, ip6 saddr, ip6 daddr, proto-src, proto-dst, zone)", r.Refusal.Message);
        Assert.Equal(r.Refusal, lift.Refusals[0]);

        // every base chain of the hooks corpus lifted on its own, with what it reaches
        var input = Assert.IsType<ChainLift.Lifted>(lift.Chains.Single(c => c.Chain == new ChainId(NfProto.Inet, "f", "in")));
        Assert.Equal(["inet f/ssh", "inet f/deny"], input.Reached.Select(c => c.Name));
        // (a dormant table registers no hooks: nothing of it is lifted)
        Assert.Equal(tables.Take(tables.Count - 1).Where(t => (t.Table.TableFlags & NftTableFlags.Dormant) == 0).Sum(t => t.Chains.Count(c => c.IsBase)),
            lift.Chains.OfType<ChainLift.Lifted>().Count(c => c.BaseChains.Count > 0));
        Assert.DoesNotContain(lift.Ruleset.BaseChains, b => b.Name.StartsWith("inet r/", StringComparison.Ordinal));

        // IR names are opaque: the lift says which chain each stands for
        Assert.Equal(new ChainId(NfProto.Netdev, "nd", "both"), lift.Origins["netdev nd/both@lift1"]);
        Assert.Equal(new ChainId(NfProto.Inet, "f", "ssh"), lift.Origins["inet f/ssh"]);
    }

    [Fact]
    public void PerChainLiftsJoinIntoTheSameRulesetAsBefore()
    {
        var tables = CorpusLoader.Load("hooks");
        var lift = NftLifter.LiftChains(tables);
        Assert.Empty(lift.Refusals);
        Assert.Equal(NftLifter.Lift(tables).Ruleset, lift.Ruleset);
        // a regular chain reached from a base chain is kept once, in ruleset order
        Assert.Equal(["netdev nd/tagged", "inet f/ssh", "inet f/deny"], lift.Ruleset.Chains.Select(c => c.Name).Take(3));
    }

    [Fact]
    public void SetEncodersConvertElementsAsTheLiftConvertedTheSet()
    {
        var t = CorpusLoader.Table("sets", "inet", "s");
        var lift = NftLifter.LiftChains([t]);
        Assert.Empty(lift.Refusals);
        int exact = 0, refused = 0, keys = 0;
        static byte[] Fields(SetElement e) => e.Key.SelectMany(k => ((KeyPart.Exact)k).Value.Bytes).ToArray();
        foreach (var ((family, table, name), encoder) in lift.SetEncoders)
        {
            var source = t.Sets.Single(s => s.Name == name);
            var ir = lift.Ruleset.FindSet(encoder.IrName)!;
            var converted = source.Elements.Select(encoder.Lift).ToList();
            if (converted.All(e => e != null))
            {
                Assert.Equal(ir.Elements.ToHashSet(), converted.Select(e => e!).ToHashSet());
                exact++;
                // a map key (the exact parts' field bytes) goes back to the nft key the element came from
                var plain = source.Elements.Zip(converted).Where(p => p.Second!.Key.All(k => k is KeyPart.Exact) && p.First.KeyEnd == null).ToList();
                if (plain.Count > 0 && encoder.RegisterKey(Fields(plain[0].Second!)) != null)
                {
                    foreach (var (nft, irElement) in plain)
                        Assert.Equal(((Nft.Bytecode.Data.ValueData)nft.Key!).Value, encoder.RegisterKey(Fields(irElement!)));
                    keys++;
                }
            }
            else if ((source.Set.SetFlags & NftSetFlags.Interval) != 0 && source.Elements.All(e => e.KeyEnd == null)) refused++;
            else Assert.Fail($"set {name}: an element that is not an interval bound was not converted");
        }
        Assert.True(exact >= 2, $"{exact} sets converted element by element");
        Assert.True(keys >= 2, $"{keys} sets keyed back into register layout");
        Assert.True(refused >= 1, "a single-field interval set must be lifted whole (its ranges depend on neighbouring bounds)");
    }
}
