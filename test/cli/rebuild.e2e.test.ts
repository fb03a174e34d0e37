/**
 * End to end (issue 20): a release XORed against the 2023 layout decodes against a base folder that
 * holds the same LLaMA as a newer conversion does (one safetensors file, no inv_freq): the base is
 * rebuilt on the fly, never written, and every output is proven by its published digest.
 */
import { readFileSync } from 'node:fs';
import { cp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hfStateDict, type LlamaDims } from '../../src/rebuild/llama-shapes.js';
import { openRebuilt, planRebuild } from '../../src/rebuild/rebuild-plan.js';
import { shardStateDict } from '../../src/rebuild/shards.js';
import { readZipDirectory } from '../../src/release/zip-directory.js';
import { folderFiles, HubStandIn, standInEnv } from '../hub/stand-in.js';
import { fileSha256, finalNames, removeDir, runCli, sha256, tempDir, TORCH, writeRelease } from '../support/helpers.js';

const DIR = join(TORCH, 'rebuild');
const dims = JSON.parse(readFileSync(join(DIR, 'dims.json'), 'utf8')) as LlamaDims;

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(() => removeDir(work));

/** The safetensors conversion as a base folder: the tensors and config.json, nothing else. */
async function safetensorsBase(): Promise<string> {
  const dir = join(work, 'llama-safetensors');
  await mkdir(dir);
  await cp(join(DIR, 'safetensors', 'model.safetensors'), join(dir, 'model.safetensors'));
  await cp(join(DIR, 'safetensors', 'config.json'), join(dir, 'config.json'));
  return dir;
}

async function bytesOf(dir: string, name: string): Promise<Buffer> {
  const plan = (await planRebuild(dir))!;
  const source = await openRebuilt(name, plan.files.get(name)!);
  const buf = Buffer.alloc(plan.files.get(name)!.size + 1);
  const n = await source.read(buf, buf.length);
  await source.close();
  return buf.subarray(0, n);
}

describe('decode against a base held as safetensors', () => {
  it('rebuilds the 2023 base on the fly: every output verified (exit 0), no base file written anywhere', async () => {
    const baseDir = await safetensorsBase();
    expect(shardStateDict(hfStateDict(dims)).map((s) => s.file)).toEqual(['pytorch_model.bin']);
    const base = await bytesOf(baseDir, 'pytorch_model.bin');
    // A fine-tune: every weight of the embedding changed; the zip structure and data.pkl stay.
    const fine = Buffer.from(base);
    const embed = readZipDirectory(fine, 0).records.find((r) => r.name === 'pytorch_model/data/0')!;
    const at = embed.localOffset + 30 + fine.readUInt16LE(embed.localOffset + 26) + fine.readUInt16LE(embed.localOffset + 28);
    for (let i = at; i < at + embed.size; i += 2) fine[i] ^= 0x15;
    const release = await writeRelease(join(work, 'r'), [
      { name: 'pytorch_model.bin', fine, base },
      { name: 'config.json', fine: Buffer.from('{"a": 1}\n'), base: Buffer.from('{"a": 2}\n'), plain: true },
    ]);
    const before = await readdir(baseDir);
    const r = await runCli(['decode', release.outDir, release.xorDir, baseDir, '--manifest', release.manifest, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/rebuilding the 2023 conversion \(LLaMA 64x2\) from a safetensors conversion \(model\.safetensors\) in .*: the files the release was XORed against are made on the fly \(nothing is written\)/);
    const doc = JSON.parse(r.stdout);
    expect(doc.baseRebuild).toEqual({ target: null, from: 'safetensors', dir: baseDir, sources: ['model.safetensors'], files: ['pytorch_model.bin'] });
    expect(doc.files.find((f: { name: string }) => f.name === 'pytorch_model.bin').status).toBe('verified');
    expect(await fileSha256(join(release.outDir, 'pytorch_model.bin'))).toBe(sha256(fine));
    expect(await finalNames(release.outDir)).toEqual(['config.json', 'pytorch_model.bin']);
    expect(await readdir(baseDir)).toEqual(before);
  });

  it('rebuilds it from torch .bin files of another sharding without inv_freq too (exit 0), the bytes equal to the safetensors rebuild', async () => {
    const fromSafetensors = await bytesOf(await safetensorsBase(), 'pytorch_model.bin');
    const baseDir = join(work, 'llama-bin');
    await cp(join(DIR, 'bin-resharded'), baseDir, { recursive: true });
    const base = await bytesOf(baseDir, 'pytorch_model.bin');
    expect(base.equals(fromSafetensors)).toBe(true);
    const fine = Buffer.from(base);
    fine[fine.length >> 1]! ^= 0x01;
    const release = await writeRelease(join(work, 'r'), [{ name: 'pytorch_model.bin', fine, base }]);
    const r = await runCli(['decode', release.outDir, release.xorDir, baseDir, '--manifest', release.manifest]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/rebuilding the 2023 conversion \(LLaMA 64x2\) from a torch \.bin conversion of another layout \(pytorch_model-00001-of-00002\.bin, pytorch_model-00002-of-00002\.bin\)/);
    expect(await fileSha256(join(release.outDir, 'pytorch_model.bin'))).toBe(sha256(fine));
  });

  it("rebuilds it from Meta's original files (model parallel 2, shared storages), tokenizer.model from beside them (exit 0)", async () => {
    const meta = join(TORCH, 'meta');
    const root = join(work, 'llama');
    await cp(join(meta, 'mp2'), join(root, '13B'), { recursive: true });
    await cp(join(meta, 'tokenizer.model'), join(root, 'tokenizer.model'));
    const base = readFileSync(join(meta, 'hf-from-mp2', 'pytorch_model.bin'));
    const fine = Buffer.from(base);
    fine[fine.length >> 1]! ^= 0x40;
    const tokenizer = readFileSync(join(meta, 'tokenizer.model'));
    const release = await writeRelease(join(work, 'r'), [
      { name: 'pytorch_model.bin', fine, base },
      { name: 'tokenizer.model', fine: tokenizer, base: tokenizer },
    ]);
    const r = await runCli(['decode', release.outDir, release.xorDir, join(root, '13B'), '--manifest', release.manifest, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/rebuilding the 2023 conversion \(LLaMA 64x2\) from Meta's original release \(consolidated\.00\.pth, consolidated\.01\.pth\)/);
    expect(JSON.parse(r.stdout).totals.verified).toBe(2);
    expect(await fileSha256(join(release.outDir, 'pytorch_model.bin'))).toBe(sha256(fine));
    expect(await fileSha256(join(release.outDir, 'tokenizer.model'))).toBe(sha256(tokenizer));
  });

  it('a rebuilt base that is not the one the release was made against is a mismatch (exit 1): nothing kept, the diagnosis runs', async () => {
    const baseDir = await safetensorsBase();
    // The release was made against another LLaMA of the same shape (the Meta fixture's).
    const other = readFileSync(join(TORCH, 'meta', 'hf-from-mp2', 'pytorch_model.bin'));
    const release = await writeRelease(join(work, 'r'), [{ name: 'pytorch_model.bin', fine: other, base: other }]);
    const r = await runCli(['decode', release.outDir, release.xorDir, baseDir, '--manifest', release.manifest, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).files[0]).toMatchObject({ name: 'pytorch_model.bin', status: 'mismatch' });
    expect(r.stderr).toMatch(/pytorch_model\.bin: sha256 [0-9a-f]{64} does not match/);
    expect(await finalNames(release.outDir)).toEqual([]);
  });

  it('a bf16 conversion is refused before anything is written (exit 2): its fp16 bits are gone, and the message says what works', async () => {
    const baseDir = await safetensorsBase();
    const base = await bytesOf(baseDir, 'pytorch_model.bin');
    const release = await writeRelease(join(work, 'r'), [{ name: 'pytorch_model.bin', fine: base, base }]);
    // The same file as a bf16 re-save would describe it: the header's dtypes say BF16 (same sizes).
    const file = join(baseDir, 'model.safetensors');
    const bytes = readFileSync(file);
    const length = Number(bytes.readBigUInt64LE(0));
    const header = bytes.subarray(8, 8 + length).toString('utf8').trimEnd().replaceAll('"F16"', '"BF16"');
    expect(header).toContain('"BF16"');
    const padded = Buffer.from(header.padEnd(Math.ceil(header.length / 8) * 8, ' '));
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(padded.length));
    // Offsets count from the end of the header: the data moves with it, unchanged.
    await writeFile(file, Buffer.concat([size, padded, bytes.subarray(8 + length)]));
    const r = await runCli(['decode', release.outDir, release.xorDir, baseDir, '--manifest', release.manifest]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/model\.safetensors: holds LLaMA in bf16: the exact base cannot be rebuilt from it; a bf16 copy has lost Meta's fp16 bits \(transformers 4\.33 and later re-save through bf16\): use Meta's original files, or a conversion made in fp16 before transformers 4\.33/);
    expect(await finalNames(release.outDir)).toEqual([]);
  });

  it('a base folder whose safetensors lack what the base needs says so (exit 2)', async () => {
    const baseDir = await safetensorsBase();
    const base = await bytesOf(baseDir, 'pytorch_model.bin');
    const release = await writeRelease(join(work, 'r'), [{ name: 'pytorch_model.bin', fine: base, base }]);
    await rm(join(baseDir, 'config.json'));
    const r = await runCli(['decode', release.outDir, release.xorDir, baseDir, '--manifest', release.manifest]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/has no config\.json giving num_attention_heads, which rebuilding the base needs/);
  });
});

describe('decode against a base on the Hub held as safetensors', () => {
  let hub: HubStandIn;
  beforeAll(async () => {
    hub = new HubStandIn();
    await hub.start();
  });
  afterAll(() => hub.stop());

  it('rebuilds the 2023 base from hf:// with ranged reads (exit 0, verified), nothing of the base stored', async () => {
    hub.reset();
    hub.repos.set('Org/llama-st', { commit: 'c3'.repeat(20), files: await folderFiles(join(DIR, 'safetensors'), 'st') });
    const base = await bytesOf(await safetensorsBase(), 'pytorch_model.bin');
    const fine = Buffer.from(base);
    fine[fine.length >> 1]! ^= 0x08;
    const release = await writeRelease(join(work, 'r'), [{ name: 'pytorch_model.bin', fine, base }]);
    const r = await runCli(['decode', release.outDir, release.xorDir, 'hf://Org/llama-st/st', '--manifest', release.manifest, '--json'], { env: standInEnv(hub, work) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/rebuilding the 2023 conversion \(LLaMA 64x2\) from a safetensors conversion \(model\.safetensors\) in hf:\/\/Org\/llama-st\/st/);
    const doc = JSON.parse(r.stdout);
    expect(doc.files[0]).toMatchObject({ name: 'pytorch_model.bin', status: 'verified' });
    expect(doc.baseRebuild).toMatchObject({ from: 'safetensors', dir: 'hf://Org/llama-st/st', files: ['pytorch_model.bin'] });
    expect(await fileSha256(join(release.outDir, 'pytorch_model.bin'))).toBe(sha256(fine));
    // Ranged reads of the one safetensors file; nothing cached of it.
    const ranged = hub.requests.filter((q) => q.url.includes('model.safetensors'));
    expect(ranged.length).toBeGreaterThan(0);
    expect(ranged.every((q) => q.range !== undefined)).toBe(true);
    expect(await readdir(join(work, 'hf-home')).catch(() => [])).toEqual([]);
  });
});
