#!/usr/bin/env python3
"""Makes the many-small-files context of benches/scale.sh and benches/compare.sh.

    python3 benches/many-files.py DIR N

N files in 100 x 100 directories (d000/e000/f000000.txt ...), each of 8 to 700 bytes, the
same every time.
"""
import os
import sys

root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i % 100), "e%03d" % (i // 100 % 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d.txt" % i), "w") as f:
        f.write("file %d\n" % i + "x" * (i % 700))
