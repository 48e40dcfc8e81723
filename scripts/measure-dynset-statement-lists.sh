#!/bin/bash
# How nf_tables gives packet-path elements their statements when the rules writing one set give different ones
# (issue 8): run as root; uses a throwaway namespace and only nft and bash (UDP through the output hook on lo).
set -e
NS=dynset-lists-$$
ip netns add $NS
trap 'ip netns del $NS' EXIT
ip -n $NS link set lo up
N() { ip netns exec $NS nft "$@"; }
# N packets of 10 bytes to 127.0.0.$1
send() { ip netns exec $NS bash -c "for i in \$(seq $2); do echo -n 123456789 > /dev/udp/127.0.0.$1/9999; done"; }
N add table ip t
N add set ip t s '{ type ipv4_addr; size 100; flags dynamic; }'
N add chain ip t c '{ type filter hook output priority 0; }'
N add rule ip t c udp dport 9999 update @s { ip daddr counter }
send 1 2
echo "== 2 packets to .1 through update @s { ip daddr counter }"; N list set ip t s
H=$(N -a list chain ip t c | sed -n 's/.*update @s.*# handle //p')
N replace rule ip t c handle $H udp dport 9999 update @s { ip daddr limit rate 1/hour burst 2 packets } counter
echo "== the rule replaced by update @s { ip daddr limit rate 1/hour burst 2 packets } counter"; N list set ip t s
send 1 3; send 3 3
echo "== 3 packets to .1, 3 to .3"; N list ruleset
N add rule ip t c udp dport 9999 update @s { ip daddr counter quota 100000 bytes } counter
send 4 2; send 1 1; send 3 1
echo "== a second rule update @s { ip daddr counter quota 100000 bytes } counter; 2 packets to .4, 1 to .1, 1 to .3"; N list ruleset
N add element ip t s { 127.0.0.5 }
send 5 2
echo "== add element { 127.0.0.5 }; 2 packets to .5"; N list ruleset
N insert rule ip t c udp dport 9999 ip daddr @s counter
send 1 1; send 7 1
echo "== a lookup udp dport 9999 ip daddr @s counter first; 1 packet to .1, 1 to .7"; N list ruleset
