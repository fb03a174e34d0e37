#!/usr/bin/env python3
"""Differential fuzzer of the pickle check's zip reading against torch 1.13 itself.

Builds random zip structures around a real torch.save checkpoint (duplicate, case-folded and NUL
names, second central directories, zip64 end records and fields, data descriptors, compressed,
shadowed and TorchScript records), loads each with torch.load (find_class and torch.jit.load
hooked: nothing runs) and judges it with the tool's PickleCheck (from dist/, so `npm run build`
first). A file the check passes (`safe`, or `none`: not judged) from which torch resolved a global
outside the allowlist, or which torch handed to torch.jit.load, is a bypass: printed, exit 1.

  /usr/bin/python3 scripts/fuzz/zip-structures.py [--seed N] [--cases N] [--keep DIR]

Needs Debian's python3-torch (1.13). Not part of `npm test`: CI has no torch.
"""
import argparse, io, json, os, pickle, random, shutil, struct, subprocess, sys, tempfile, zlib, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def allowlist():
    code = "import('./dist/release/pickle-allowlist.js').then((m) => console.log(JSON.stringify([...m.ALLOWED_GLOBALS])))"
    return set(json.loads(subprocess.run(["node", "-e", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout))


class Reached(Exception):
    pass


def hook_torch(allowed):
    base = pickle.Unpickler

    class Hooked(base):
        def find_class(self, mod, name):
            if f"{mod}.{name}" not in allowed:
                raise Reached(f"{mod}.{name}")
            return super().find_class(mod, name)

    pickle.Unpickler = Hooked
    pickle.load = lambda f, **kw: Hooked(f, **kw).load()
    import torch

    def jit(*a, **k):
        raise Reached("torch.jit.load")

    torch.jit.load = jit
    return torch


def torch_verdict(torch, path):
    try:
        torch.load(path)
        return "ok"
    except Reached as e:
        return "reached:" + str(e)
    except BaseException as e:  # noqa: BLE001 - any failure of torch's is a refusal
        return "error:" + type(e).__name__


def our_verdicts(paths):
    code = r"""
import { readFileSync } from 'node:fs';
import { PickleCheck } from './dist/verify/pickle-check.js';
for (const f of JSON.parse(readFileSync(0, 'utf8'))) {
  const bytes = readFileSync(f);
  const check = new PickleCheck('pytorch_model.bin', bytes.length);
  // In uneven pieces, as a stream arrives.
  for (let at = 0, n = 1; at < bytes.length; at += n, n = (n * 7 + 13) % 70001 || 1) check.feed(bytes.subarray(at, at + n));
  console.log(JSON.stringify([f, check.finish().status]));
}
"""
    r = subprocess.run(["node", "--input-type=module", "-e", code], cwd=ROOT, input=json.dumps(paths), capture_output=True, text=True, check=True)
    return dict(json.loads(line) for line in r.stdout.splitlines())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--keep", help="write the cases here (default: a temporary folder, removed)")
    args = ap.parse_args()
    allowed = allowlist()
    torch = hook_torch(allowed)
    import warnings
    warnings.filterwarnings("ignore")
    global rng, REAL, ARCH
    rng = random.Random(args.seed)
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2), "v": torch.ones(3)}, buf)
    z = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    REAL = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    ARCH = REAL[0][0].split("/")[0]
    out = args.keep or tempfile.mkdtemp()
    os.makedirs(out, exist_ok=True)
    paths = []
    for i in range(args.cases):
        p = os.path.join(out, f"c{args.seed}_{i:05d}.bin")
        with open(p, "wb") as f:
            f.write(case())
        paths.append(p)
    ours = our_verdicts(paths)
    stats, bad = {}, []
    for p in paths:
        t = torch_verdict(torch, p)
        key = (ours[p], t.split(":")[0])
        stats[key] = stats.get(key, 0) + 1
        if ours[p] in ("safe", "none") and t.startswith("reached"):
            bad.append((p, ours[p], t))
    for p, o, t in bad[:20]:
        print("BYPASS", p, o, t)
    print(json.dumps({f"{k[0]}/torch {k[1]}": v for k, v in sorted(stats.items(), key=lambda x: -x[1])}), f"bypasses: {len(bad)}")
    if not args.keep:
        shutil.rmtree(out)
    sys.exit(1 if bad else 0)


EVIL = b"cos\nsystem\n(S'true'\ntR."
EVIL2 = b'\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.'

def names_for(pkl):
    base = f'{ARCH}/data.pkl'
    return rng.choice([base, base, base.upper(), f'{ARCH}/DATA.pkl', f'{ARCH}//data.pkl', f'{ARCH}/./data.pkl',
                       f'{ARCH}\\data.pkl', 'other/data.pkl', 'data.pkl', base + '\x00', base + ' ', f'/{base}', f'./{base}',
                       f'{ARCH.upper()}/data.pkl', f'{ARCH}/data.pkl/', f'{ARCH}/data.pk'])

def case():
    # entries: (local name, central name, data, method, flags, local extra, central extra, crc ok)
    entries = []
    for name, data in REAL:
        if name.endswith('/data.pkl') and rng.random() < 0.3: data = rng.choice([EVIL, EVIL2])
        entries.append(dict(lname=name, cname=name, data=data))
    nevil = rng.choice([0, 1, 1, 2])
    for _ in range(nevil):
        nm = names_for(True)
        e = dict(lname=nm, cname=nm, data=rng.choice([EVIL, EVIL2]))
        entries.insert(rng.randrange(len(entries) + 1), e)
    if rng.random() < 0.1:
        nm = rng.choice([f'{ARCH}/constants.pkl', f'{ARCH}/CONSTANTS.pkl', f'{ARCH}/constants.pkl\x00x', f'{ARCH}/code/', f'{ARCH}/constants.pkl/'])
        entries.insert(rng.randrange(1, len(entries) + 1), dict(lname=nm, cname=nm, data=EVIL2))
    if rng.random() < 0.08:
        cut = rng.randrange(1, len(ARCH))
        new = ARCH[:cut] + rng.choice(['\x00', '\x00/']) + ARCH[cut:]
        for e in entries:
            e['lname'] = e['lname'].replace(ARCH, new, 1); e['cname'] = e['cname'].replace(ARCH, new, 1)
        shadow = rng.choice([ARCH[:cut], ARCH[:cut].upper(), ARCH[:cut] + '/data.pkl'])
        entries.insert(rng.randrange(len(entries) + 1), dict(lname=shadow, cname=shadow, data=rng.choice([EVIL, EVIL2])))
    for e in entries:
        e.setdefault('method', 0); e['flags'] = 0; e['lextra'] = b''; e['cextra'] = b''; e['crcbad'] = False
        r = rng.random()
        if r < 0.05: e['lname'] = names_for(True)
        elif r < 0.1: e['cname'] = names_for(True)
        if rng.random() < 0.08: e['lextra'] = struct.pack('<HH', 0xcafe, 4) + b'\0' * 4 + (b'\0' * rng.choice([0, 60]))
        if rng.random() < 0.05: e['cextra'] = struct.pack('<HH', 0xcafe, 2) + b'\0\0'
        if rng.random() < 0.04: e['method'] = 8
        if rng.random() < 0.05: e['flags'] |= 8
        if rng.random() < 0.03: e['crcbad'] = True
        if rng.random() < 0.05: e['flags'] |= 0x800
    body = bytearray()
    if rng.random() < 0.03: body += rng.choice([b'PK\x03\x04', b'\0' * 64, EVIL])
    for e in entries:
        data = e['data']
        comp = zlib.compress(data)[2:-4] if e['method'] == 8 else data
        crc = zlib.crc32(data) ^ (1 if e['crcbad'] else 0)
        e['off'] = len(body); e['crc'] = crc; e['csize'] = len(comp); e['usize'] = len(data)
        ln = e['lname'].encode('latin1')
        sizes = (0, 0, 0) if e['flags'] & 8 and rng.random() < 0.5 else (crc, len(comp), len(data))
        body += struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, e['flags'], e['method'], 0, 0, *sizes, len(ln), len(e['lextra'])) + ln + e['lextra']
        # torch aligns data to 64: it writes an extra of padding; keep the real shape sometimes
        body += comp
        if e['flags'] & 8: body += struct.pack('<IIII', 0x08074b50, crc, len(comp), len(data))
    order = list(range(len(entries)))
    if rng.random() < 0.15: rng.shuffle(order)
    cdirs = []
    def central(idxs):
        cd = bytearray()
        for i in idxs:
            e = entries[i]; cn = e['cname'].encode('latin1')
            off = e['off']
            if rng.random() < 0.03: off = entries[rng.randrange(len(entries))]['off']
            csize, usize, cextra = e['csize'], e['usize'], e['cextra']
            if rng.random() < 0.1:
                fields = []
                which = [rng.random() < 0.6 for _ in range(3)]
                vals = [usize, csize, off]
                if rng.random() < 0.2: vals[2] = entries[rng.randrange(len(entries))]['off']
                if rng.random() < 0.1: vals[0] = vals[1] = vals[0] + rng.choice([-1, 1, 64])
                for k in range(3):
                    if which[k]: fields.append(vals[k])
                payload = b''.join(struct.pack('<Q', v) for v in fields)
                if rng.random() < 0.1: payload = payload[:-4]
                if rng.random() < 0.1: payload += struct.pack('<Q', 0)
                z64 = struct.pack('<HH', 1, len(payload)) + payload
                cextra = (z64 + cextra) if rng.random() < 0.7 else (cextra + struct.pack('<HH', 0xcafe, 0) + z64)
                if rng.random() < 0.15: cextra += struct.pack('<HH', 1, 8) + struct.pack('<Q', entries[0]['off'])
                if which[0]: usize = 0xffffffff
                if which[1]: csize = 0xffffffff
                if which[2]: off = 0xffffffff
            cd += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 45, 45, e['flags'], e['method'], 0, 0, e['crc'], csize, usize, len(cn), len(cextra), 0, 0, 0, 0, off) + cn + cextra
        return cd
    cd = central(order)
    extra_cd = None
    if rng.random() < 0.08:
        # a second directory earlier in the file, pointing only at some entries
        extra_cd = central([i for i in order if rng.random() < 0.7])
        ecd_off = len(body); body += extra_cd
    cd_off = len(body); body += cd
    count = len(order)
    comment = b''
    if rng.random() < 0.08 and extra_cd is not None:
        n2 = extra_cd.count(b'PK\x01\x02'); fake = struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, n2, n2, len(extra_cd), ecd_off, 0)
        comment = fake
    if rng.random() < 0.05: comment += b'x' * rng.choice([1, 10])
    cnt = count if rng.random() > 0.04 else count - 1
    if extra_cd is not None and rng.random() < 0.5:
        # the end record points at the earlier directory instead
        n2 = extra_cd.count(b'PK\x01\x02')
        body += struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, n2, n2, len(extra_cd), ecd_off, len(comment)) + comment
    else:
        c32, s32, o32 = cnt, len(cd), cd_off
        if rng.random() < 0.15:
            t64, s64, o64 = cnt, len(cd), cd_off
            if extra_cd is not None and rng.random() < 0.5:
                t64 = extra_cd.count(b'PK\x01\x02'); s64 = len(extra_cd); o64 = ecd_off
            if rng.random() < 0.2: t64 += rng.choice([-1, 1])
            z64_at = len(body)
            body += struct.pack('<IQHHIIQQQQ', 0x06064b50, 44, 45, 45, 0, 0, t64, t64, s64, o64)
            body += struct.pack('<IIQI', 0x07064b50, 0, z64_at, 1)
            r = rng.random()
            if r < 0.4: c32, s32, o32 = 0xffff, 0xffffffff, 0xffffffff
            elif r < 0.6: c32 = 0xffff
            elif r < 0.7: o32 = 0xffffffff
        body += struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, c32, c32, s32, o32, len(comment)) + comment
    if rng.random() < 0.03: body += b'\0' * 7
    return bytes(body)


if __name__ == "__main__":
    main()
