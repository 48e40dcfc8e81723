#!/bin/sh
# ruledelta: rule journal records with the backend's state as a delta (after) against the trial branch e8228ec
# (before: whole backend state per rule record), side by side in one run; 20 adds so that the journal's growth
# over 20 adds is in results.json (add_rule_journal_bytes: the journal's size after each add).
# Baseline build: git archive e8228ec | tar -x -C /tmp/rd-base-src; dotnet build Bpfilter.Daemon -c Release
nice -n 19 bench/suite.py --n 10000 --measure d --sides bpf-xdp --shapes same --samples 20 \
    --baseline /tmp/rd-base-src/Bpfilter.Daemon/bin/Release/net10.0 --out /tmp/rd-bench/run1
