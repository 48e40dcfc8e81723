#!/bin/bash
# usage: kernel.sh FILE TAG   loadcost's kernel.sh (the kernel's own `nft -f FILE` in a fresh netns), netns prefix ll
NS_PREFIX=ll exec "$(dirname "$0")/../2026-12-05-loadcost/kernel.sh" "$@"
