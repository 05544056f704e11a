#!/usr/bin/env python3
"""Compares NG reply *shapes* (keys and value types, recursively) recorded
from two relays by record.py: e.g. rtpengine's (tests/data/ng) and
mediarelay's (record.py --ng ADDR --out DIR --only ping errors ...).

    python3 tests/ng_reference/compare.py tests/data/ng /tmp/ngmr
"""
import glob
import json
import os
import sys


def shape(v, depth=0):
    if depth > 6:
        return "..."
    if isinstance(v, dict):
        return {k: shape(x, depth + 1) for k, x in sorted(v.items())}
    if isinstance(v, list):
        return [shape(v[0], depth + 1)] if v else []
    return type(v).__name__


def main():
    ref, mine = sys.argv[1], sys.argv[2]
    compared = differ = 0
    for group in sorted(os.listdir(mine)):
        for f in sorted(glob.glob(os.path.join(mine, group, "*.rep.json"))):
            r = os.path.join(ref, group, os.path.basename(f))
            if not os.path.exists(r):
                continue
            a = json.load(open(r)).get("message")
            b = json.load(open(f)).get("message")
            compared += 1
            if shape(a) != shape(b):
                differ += 1
                print("DIFF", group, os.path.basename(f))
                print("  reference:", json.dumps(shape(a))[:300])
                print("  this one: ", json.dumps(shape(b))[:300])
    print(f"{compared} compared, {compared - differ} same shape, {differ} differ")


if __name__ == "__main__":
    main()
