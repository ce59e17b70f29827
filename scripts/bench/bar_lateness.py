#!/usr/bin/env python3
"""How late bar lines are written: watch a folder of JSON-lines files for
SECS seconds and, for every bar of a minute that starts at or after FROM_MS,
record when its line appeared against its `end` plus the grace.

    bar_lateness.py DIR FROM_MS SECS GRACE_MS

Prints `bars=N p50=… p99=… max=…` in milliseconds (the time the line was
first seen, polled every 5 ms, minus end + grace). Stdlib only."""
import glob
import json
import os
import sys
import time

folder, from_ms, secs, grace = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
offsets, partial, late = {}, {}, []
deadline = time.time() + secs
while time.time() < deadline:
    for path in glob.glob(os.path.join(folder, "*.jsonl")):
        try:
            with open(path, "rb") as f:
                f.seek(offsets.get(path, 0))
                data = f.read()
        except FileNotFoundError:
            continue
        if not data:
            continue
        now = time.time() * 1000
        offsets[path] = offsets.get(path, 0) + len(data)
        data = partial.pop(path, b"") + data
        *lines, rest = data.split(b"\n")
        if rest:
            partial[path] = rest
        for line in lines:
            if b'"bar"' not in line[:20] and b'"kline"' not in line[:20]:
                continue
            bar = json.loads(line)
            if bar["start"] >= from_ms:
                late.append(now - bar["end"] - grace)
    time.sleep(0.005)
late.sort()
if not late:
    print("bars=0")
else:
    q = lambda p: late[min(len(late) - 1, int(p * len(late)))]
    print("bars=%d p50=%.0f p99=%.0f max=%.0f" % (len(late), q(0.5), q(0.99), late[-1]))
