/**
 * End to end, on the hostile files of fixtures/make-hostile.py (issue 19): a publisher ships the
 * payloads and the manifest, so every digest matches and the pickle check alone decides. Each of
 * these files ran its payload under torch 1.13's torch.load (fixtures/torch/hostile/ran.json, and
 * again here where torch is installed); none may be kept or verified.
 */
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectSameTensors } from '../support/safetensors.js';
import { finalNames, removeDir, runCli, sha256, SHARD1, tempDir, TORCH, TORCH_BASE, writeRelease } from '../support/helpers.js';

const HOSTILE = join(TORCH, 'hostile');
const SHARD = 'pytorch_model-00001-of-00001.bin';
/** `ran`: torch.load ran the file's payload; `jit`: torch.load handed the file to torch.jit.load. */
const ran = JSON.parse(await readFile(join(HOSTILE, 'ran.json'), 'utf8')) as { mark: string; ran: Record<string, boolean>; jit: Record<string, boolean> };

function torchRuns(): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const HAS_TORCH = torchRuns();

/** Whether torch.load of `path` runs the payload (it echoes the mark), in a subprocess with a timeout. */
function loadRunsPayload(path: string): boolean {
  const code = 'import sys, torch\ntry:\n    torch.load(sys.argv[1])\nexcept Exception:\n    pass\n';
  const out = execFileSync('/usr/bin/python3', ['-c', code, path], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'ignore'] });
  return out.includes(ran.mark);
}

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(() => removeDir(work));

async function release(file: Buffer) {
  return writeRelease(join(work, 'r'), [{ name: SHARD, fine: file, base: await readFile(join(TORCH_BASE, SHARD1)) }]);
}

/** Every checkpoint left under a final name in `dir` must load without running anything. */
async function expectKeptLoadsHarmlessly(dir: string): Promise<void> {
  if (!HAS_TORCH) return;
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.bin'))) expect(loadRunsPayload(join(dir, name)), name).toBe(false);
}

const PICKLE_CASES: [string, 'unsafe' | 'invalid', RegExp][] = [
  ['zip-data-pkl-second.bin', 'invalid', /central directory points torch at "a\/data\.pkl" at byte \d+, not at the first entry "a\/version"/],
  ['zip-nested-first.bin', 'invalid', /central directory points torch at "a\/data\.pkl" at byte \d+, not at the first entry "a\/sub\/data\.pkl"/],
  ['zip-cd-elsewhere.bin', 'invalid', /central directory points torch at "a\/data\.pkl" at byte \d+, not at the first entry "a\/data\.pkl"/],
  ['zip-two-data-pkl.bin', 'invalid', /holds "a\/data\.pkl" twice \(names compared without case/],
  ['zip-upper-case.bin', 'unsafe', /posix\.system \(GLOBAL, REDUCE\)/],
  ['zip-memo-underscore.bin', 'invalid', /PUT at byte \d+ has the argument "1_0", which is not a plain decimal/],
  ['zip-frame-cut.bin', 'invalid', /the argument read at byte \d+ runs past the end of its FRAME at byte \d+; CPython reads other bytes there/],
  ['zip-torchscript.bin', 'invalid', /it is a TorchScript archive \(constants\.pkl\), which torch\.load hands to torch\.jit\.load/],
  ['zip-torchscript-nul-name.bin', 'invalid', /its record "archive\/constants\.pkl\\u0000x" has a NUL byte in its name/],
  ['zip-torchscript-nul-no-data-pkl.bin', 'invalid', /its record "archive\/constants\.pkl\\u0000x" has a NUL byte in its name/],
  ['tensor-protocol.bin', 'unsafe', /posix\.system \(GLOBAL, REDUCE\)/],
  ['frame-stop-early.bin', 'invalid', /STOP at byte 23 ends the pickle before its FRAME ends at byte 200011/],
  ['protocol-0.bin', 'unsafe', /posix\.system \(GLOBAL, REDUCE\)/],
  ['protocol-1.bin', 'unsafe', /posix\.system \(GLOBAL, REDUCE\)/],
  ['proto-1-prefix.bin', 'unsafe', /posix\.system \(GLOBAL, REDUCE\)/],
  ['legacy-tar.bin', 'unsafe', /posix\.system \(GLOBAL, REDUCE\)/],
  ['tar-tensors.bin', 'unsafe', /posix\.system \(GLOBAL, REDUCE\)/],
  ['tar-object.bin', 'unsafe', /posix\.system \(GLOBAL, REDUCE\)/],
  ['tar-storage-views.bin', 'unsafe', /posix\.system \(GLOBAL, REDUCE\)/],
  ['tar-pax-path.bin', 'unsafe', /posix\.system \(GLOBAL, REDUCE\)/],
  ['tar-two-pickles.bin', 'invalid', /a legacy tar checkpoint \(torch < 0\.4\): it holds "pickle" twice/],
  ['tar-name-pickle.bin', 'unsafe', /os\.system \(GLOBAL, REDUCE\)/],
  ['broken-after-reduce.bin', 'unsafe', /os\.system \(GLOBAL, REDUCE\)/],
  ['no-stop.bin', 'unsafe', /os\.system \(GLOBAL, REDUCE\)/],
];

describe('hostile pickles: never kept, never verified', () => {
  it('the generator proved that torch.load runs every one of them, or hands it to torch.jit.load', () => {
    expect(Object.keys(ran.ran).sort()).toEqual(PICKLE_CASES.map(([f]) => f).sort());
    expect(PICKLE_CASES.filter(([f]) => !ran.ran[f] && !ran.jit[f])).toEqual([]);
    // A name torch reads two ways: its list of records (a C string) says TorchScript, its lookup does not.
    // torch.load does that before it looks for data.pkl: a file without one is handed over too.
    expect(ran.jit['zip-torchscript-nul-name.bin'] && ran.jit['zip-torchscript-nul-no-data-pkl.bin']).toBe(true);
    expect(ran.ran['zip-torchscript.bin'] && ran.jit['zip-torchscript.bin']).toBe(true);
  });

  it.each(PICKLE_CASES)('%s: decode says %s, names why, keeps nothing, exit 1', async (file, status, why) => {
    const hostile = join(HOSTILE, 'pickle', file);
    if (HAS_TORCH) expect(loadRunsPayload(hostile)).toBe(ran.ran[file]);
    const { baseDir, xorDir, manifest, outDir } = await release(await readFile(hostile));
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--json']);
    expect(r.code).toBe(1);
    const f = JSON.parse(r.stdout).files.find((x: { name: string }) => x.name === SHARD);
    expect(f.status).toBe(status);
    expect(f.diagnosis[0].message).toMatch(why);
    expect(r.stderr).toMatch(why);
    expect(await finalNames(outDir)).toEqual([]);
    await expectKeptLoadsHarmlessly(outDir);
  });

  it.each(PICKLE_CASES)('%s: verify of a folder holding it says %s (exit 1)', async (file, status, why) => {
    const dir = join(work, 'model');
    await mkdir(dir);
    const bytes = await readFile(join(HOSTILE, 'pickle', file));
    await writeFile(join(dir, SHARD), bytes);
    await writeFile(join(work, 'SHA256SUMS'), `${sha256(bytes)}  ${SHARD}\n`);
    const r = await runCli(['verify', dir, '--manifest', join(work, 'SHA256SUMS'), '--json']);
    expect(r.code).toBe(1);
    const f = JSON.parse(r.stdout).files.find((x: { name: string }) => x.name === SHARD);
    expect(f.status).toBe(status);
    expect(f.diagnosis.map((d: { message: string }) => d.message).join("\n")).toMatch(why);
  });

  it('--allow-unsafe-pickle keeps an unsafe file, never an invalid one (whose loaded pickle was not the one checked)', async () => {
    const { baseDir, xorDir, manifest, outDir } = await release(await readFile(join(HOSTILE, 'pickle', 'zip-cd-elsewhere.bin')));
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--allow-unsafe-pickle']);
    expect(r.code).toBe(1);
    expect(await finalNames(outDir)).toEqual([]);
  });
});

describe('a legacy tar checkpoint torch loads harmlessly (fixtures/torch/hostile/benign)', () => {
  const BENIGN = join(HOSTILE, 'benign', 'legacy-tar.bin');

  it('decode walks its storages, tensors and pickle members, finds only allowed globals and keeps it verified (exit 0)', async () => {
    const { baseDir, xorDir, manifest, outDir } = await release(await readFile(BENIGN));
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).files.find((x: { name: string }) => x.name === SHARD).status).toBe('verified');
    expect(await readFile(join(outDir, SHARD))).toEqual(await readFile(BENIGN));
    await expectKeptLoadsHarmlessly(outDir);
  });

  it('verify agrees (exit 0)', async () => {
    const dir = join(work, 'model');
    await mkdir(dir);
    const bytes = await readFile(BENIGN);
    await writeFile(join(dir, SHARD), bytes);
    await writeFile(join(work, 'SHA256SUMS'), `${sha256(bytes)}  ${SHARD}\n`);
    const r = await runCli(['verify', dir, '--manifest', join(work, 'SHA256SUMS')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

const CONVERT_CASES: [string, RegExp][] = [
  ['duplicate-name.bin', /the tensor name "w" appears twice/],
  ['proto-name.bin', /the tensor name "__proto__"|storage|header/],
  ['metadata-name.bin', /a tensor is named __metadata__, which safetensors reserves for metadata/],
  ['surrogate-name.bin', /not valid Unicode \(a lone surrogate\): "w\\ud800"/],
  ['negative-shape.bin', /a value in the shape of "w" is not a non-negative integer/],
  ['fractional-shape.bin', /a value in the shape of "w" is not a non-negative integer/],
  ['negative-offset.bin', /the storage offset of "w" is not a non-negative integer/],
  ['short-storage.bin', /storage 0 holds 10 bytes, its tensors need a storage of 16/],
  ['compressed-storage.bin', /storage 0 is compressed \(method 8\); torch stores storages uncompressed/],
  ['duplicate-storage.bin', /it holds "a\/data\/0" twice \(names compared without case/],
];

describe('decode --safetensors refuses what safetensors cannot hold as it stands (exit 2, nothing kept)', () => {
  it.each(CONVERT_CASES.filter(([f]) => f !== 'proto-name.bin'))('%s', async (file, why) => {
    const { baseDir, xorDir, manifest, outDir } = await release(await readFile(join(HOSTILE, 'convert', file)));
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--safetensors']);
    expect(r.stderr).toMatch(why);
    expect(r.stderr).toMatch(/cannot be written as safetensors/);
    expect(r.code).toBe(2);
    expect(await finalNames(outDir)).toEqual([]);
  });

  it('a tensor named __proto__ is kept as a tensor like any other (the header is built from a Map)', async () => {
    const { baseDir, xorDir, manifest, outDir } = await release(await readFile(join(HOSTILE, 'convert', 'proto-name.bin')));
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--safetensors']);
    expect(r.code).toBe(0);
    const file = await readFile(join(outDir, 'model-00001-of-00001.safetensors'));
    const json = file.subarray(8, 8 + Number(file.readBigUInt64LE(0))).toString('utf8');
    const header = JSON.parse(json);
    expect(Object.keys(header).sort()).toEqual(['__metadata__', '__proto__', 'v']);
    expect(header.__proto__).toMatchObject({ dtype: 'F16', shape: [2, 4] });
  });

  it('a zip with sizes in its local headers (no data descriptors, as Python\'s zipfile writes) converts, tensors equal to torch.load\'s', async () => {
    const { baseDir, xorDir, manifest, outDir } = await release(await readFile(join(HOSTILE, 'convert', 'local-sizes.bin')));
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--safetensors']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const expected = JSON.parse(await readFile(join(HOSTILE, 'convert', 'local-sizes.tensors.json'), 'utf8'));
    expectSameTensors(await readFile(join(outDir, 'model-00001-of-00001.safetensors')), expected);
  });

  it('the same files decode as .bin (torch can load most of them): the conversion alone refuses', async () => {
    const dir = join(work, 'copy');
    await mkdir(dir);
    await copyFile(join(HOSTILE, 'convert', 'duplicate-name.bin'), join(dir, SHARD));
    const { baseDir, xorDir, manifest, outDir } = await release(await readFile(join(dir, SHARD)));
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest]);
    expect(r.code).toBe(0);
    expect(await finalNames(outDir)).toEqual([SHARD]);
  });
});
