#!/usr/bin/env python3
# add-mixed.py BIN-or-DLL SIDE SHAPE N ADDS: ../2026-12-04-addrule3/add-profile.py, but after the suite's 16 adds of one
# key (ip saddr . udp dport: the 15th with the chain's last rule makes 16 of one key, a grouped run) each add is of
# another key (alternately ip daddr . tcp dport and tcp dport alone)
import os, sys
os.environ["OTHER_KEYS_AFTER"] = "16"
here = os.path.dirname(os.path.abspath(__file__))
script = os.path.join(here, "../2026-12-04-addrule3/add-profile.py")
os.execv(sys.executable, [sys.executable, script] + sys.argv[1:])
