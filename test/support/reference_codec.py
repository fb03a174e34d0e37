#!/usr/bin/env python3
"""A model of the public reference decoder, written from ../shared/reference/xor-format.md, used by
the tests as an independent implementation to compare bytes with (and by the benchmark as the
"reference approach"). Same command line: <output> <payload-dir> <base-dir> [--decode] [--encode] [--compress].

Behaviour modelled: numpy XOR over 4096-byte blocks; a shorter base counts as zero bytes, a longer
one is truncated; --compress reads gzip payloads when decoding and writes them when encoding; a
payload with no base prints "Exception when processing" and goes on; the exit status is always 0.
"""
import gzip
import os
import sys

import numpy as np

BLOCK = 4096


def xor_file(out_path, payload_path, base_path, encode, compress):
    opener_in = gzip.open if (compress and not encode) else open
    opener_out = gzip.open if (compress and encode) else open
    with opener_in(payload_path, "rb") as src, open(base_path, "rb") as base, opener_out(out_path, "wb") as out:
        while True:
            a = src.read(BLOCK)
            if not a:
                break
            b = base.read(len(a))
            arr_a = np.frombuffer(a, dtype=np.uint8)
            arr_b = np.zeros(len(a), dtype=np.uint8)
            arr_b[: len(b)] = np.frombuffer(b, dtype=np.uint8)
            out.write(np.bitwise_xor(arr_a, arr_b).tobytes())


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    flags = {a for a in argv if a.startswith("--")}
    out_dir, payload_dir, base_dir = args[:3]
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(payload_dir):
        try:
            xor_file(
                os.path.join(out_dir, name),
                os.path.join(payload_dir, name),
                os.path.join(base_dir, name),
                "--encode" in flags,
                "--compress" in flags,
            )
        except Exception:
            print(f"Exception when processing '{name}'")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
