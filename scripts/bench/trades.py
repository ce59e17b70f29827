#!/usr/bin/env python3
"""Trade captures in the tool's line format, for the benchmarks.

    python3 scripts/bench/trades.py random N CODES OUT   # scripts/bars_bench.sh, parquet_bench.sh
    python3 scripts/bench/trades.py walk N OUT           # scripts/parquet_bench.sh

random: CODES codes in turn, random prices of 0 to 4 decimals, random
volumes and turnovers (the worst case for a dictionary), seed 7.
walk: 50 codes, each price a random walk in cents, round-lot volumes,
turnover = price x volume, sides buy/sell/null (closer to a real day),
seed 11.
"""

import random
import sys
from decimal import Decimal


def randoms(n, codes, out):
    random.seed(7)
    with open(out, "w") as f:
        t = 1796000000000
        for i in range(n):
            c = i % codes
            t += random.random() < 0.5
            dec = random.randint(0, 4)
            price = f"{random.randint(1, 900)}" + (f".{random.randint(0, 10**dec - 1):0{dec}d}" if dec else "")
            vol = random.randint(1, 5000)
            f.write('{"type":"trade","symbol":"NASDAQ:C%d","code":"C%d.US","seq":%d,"time":%d,'
                    '"price":%s,"volume":%d,"turnover":%d.%02d,"side":"buy"}\n'
                    % (c, c, i + 1, t, price, vol, random.randint(1, 10**7), random.randint(0, 99)))


def walk(n, out):
    random.seed(11)
    level = [random.randint(1000, 90000) for _ in range(50)]  # cents
    with open(out, "w") as f:
        t = 1796000000000
        for i in range(n):
            c = random.randrange(50)
            t += random.random() < 0.5
            level[c] = max(1, level[c] + random.choice((-1, 0, 0, 0, 1)))
            price = Decimal(level[c]) / 100
            vol = random.choice((1, 5, 10, 50, 100, 100, 100, 200, 300, 500, 1000)) * random.choice((1, 1, 1, 2, 3))
            side = random.choice(('"buy"', '"sell"', 'null'))
            f.write('{"type":"trade","symbol":"NASDAQ:C%d","code":"C%d.US","seq":%d,"time":%d,'
                    '"price":%s,"volume":%d,"turnover":%s,"side":%s}\n'
                    % (c, c, 1796000000000000 + i, t, price, vol, price * vol, side))


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else ""
    if kind == "random" and len(sys.argv) == 5:
        randoms(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif kind == "walk" and len(sys.argv) == 4:
        walk(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(__doc__)
