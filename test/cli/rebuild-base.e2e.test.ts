/**
 * End to end (issue 20, item 4): `rebuild-base` writes the exact 2023 conversion from Meta's files
 * or another conversion, every file judged by the base's digests; a damaged original is named by
 * Meta's checklist.chk; bad sources are refused before anything is written.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openRebuilt, planRebuild } from '../../src/rebuild/rebuild-plan.js';
import { readZipDirectory } from '../../src/release/zip-directory.js';
import { fileSha256, finalNames, jsonDoc, readWhole, removeDir, runCli, sha256, tempDir, TORCH } from '../support/helpers.js';

const META = join(TORCH, 'meta');
const EXPECTED = readFileSync(join(META, 'hf-from-mp2', 'pytorch_model.bin'));
const TOKENIZER = readFileSync(join(META, 'tokenizer.model'));

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(() => removeDir(work));

/** Meta's layout as released: a size folder with tokenizer.model beside it. */
async function metaFolder(parallel: 'mp1' | 'mp2'): Promise<string> {
  const root = join(work, 'LLaMA');
  await cp(join(META, parallel), join(root, '13B'), { recursive: true });
  await cp(join(META, 'tokenizer.model'), join(root, 'tokenizer.model'));
  return join(root, '13B');
}

async function manifest(lines: Record<string, Buffer>): Promise<string> {
  const path = join(work, 'SHA256SUMS.base');
  await writeFile(path, Object.entries(lines).map(([name, data]) => `${sha256(data)}  ${name}\n`).join(''));
  return path;
}

async function checklist(dir: string): Promise<void> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.pth') || n === 'params.json');
  const lines = await Promise.all(names.map(async (n) => `${createHash('md5').update(await readFile(join(dir, n))).digest('hex')}  ${n}\n`));
  await writeFile(join(dir, 'checklist.chk'), lines.join(''));
}

describe('rebuild-base', () => {
  it("writes the 2023 conversion from Meta's files (model parallel 2), verified, byte for byte what the recipe gave; a rerun keeps it", async () => {
    const src = await metaFolder('mp2');
    const before = await readdir(src);
    const out = join(work, 'llama-hf');
    const sums = await manifest({ 'pytorch_model.bin': EXPECTED, 'tokenizer.model': TOKENIZER });
    const r = await runCli(['rebuild-base', out, src, '--manifest', sums, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/rebuilding the 2023 conversion \(LLaMA 64x2\) from Meta's original release \(consolidated\.00\.pth, consolidated\.01\.pth\) in /);
    const doc = jsonDoc(r.stdout) as unknown as { totals: { verified: number }; baseRebuild: { from: string; files: string[] }; files: { name: string; status: string; note: string }[] };
    expect(doc.totals.verified).toBe(2);
    expect(doc.baseRebuild).toMatchObject({ from: 'meta', files: ['pytorch_model.bin'] });
    expect(doc.files.map((f) => [f.name, f.status, f.note])).toEqual([
      ['tokenizer.model', 'verified', 'copied'],
      ['pytorch_model.bin', 'verified', 'rebuilt'],
    ]);
    expect(await fileSha256(join(out, 'pytorch_model.bin'))).toBe(sha256(EXPECTED));
    expect(await fileSha256(join(out, 'tokenizer.model'))).toBe(sha256(TOKENIZER));
    expect(await finalNames(out)).toEqual(['pytorch_model.bin', 'tokenizer.model']);
    expect(await readdir(src)).toEqual(before);

    const again = await runCli(['rebuild-base', out, src, '--manifest', sums]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/skipped +pytorch_model\.bin .*already present, sha256 ok/);
  });

  it('rebuilds from a safetensors conversion too, and copies a side file of the folder only when it is the published one', async () => {
    const src = join(work, 'llama-st');
    await cp(join(TORCH, 'rebuild', 'safetensors'), src, { recursive: true });
    // What the same tensors give from the other source, a resharded .bin conversion.
    const plan = (await planRebuild(join(TORCH, 'rebuild', 'bin-resharded')))!;
    const input = plan.files.get('pytorch_model.bin')!;
    const expected = await readWhole(await openRebuilt('pytorch_model.bin', input), 1 << 16);
    const tokenizerJson = Buffer.from('{"version": "1.0"}\n');
    await writeFile(join(src, 'tokenizer.json'), tokenizerJson);
    await writeFile(join(src, 'special_tokens_map.json'), '{}\n');
    const sums = await manifest({ 'pytorch_model.bin': expected, 'tokenizer.json': tokenizerJson, 'special_tokens_map.json': Buffer.from('{"a": 1}\n') });
    const out = join(work, 'out');
    const r = await runCli(['rebuild-base', out, src, '--manifest', sums]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/verified +tokenizer\.json .*\[copied: its published digest\]/);
    expect(r.stderr).toMatch(/not rebuilt, as their bytes cannot be made from the weights: special_tokens_map\.json/);
    expect(await finalNames(out)).toEqual(['pytorch_model.bin', 'tokenizer.json']);
    expect(await fileSha256(join(out, 'pytorch_model.bin'))).toBe(sha256(expected));
  });

  it('without digests for the size it says NOTHING WILL BE VERIFIED, and --strict fails (exit 1)', async () => {
    const src = await metaFolder('mp1');
    const r = await runCli(['rebuild-base', join(work, 'out'), src]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/NOTHING WILL BE VERIFIED: LLaMA 64x2 is none of the built-in base conversions; pass --manifest/);
    const strict = await runCli(['rebuild-base', join(work, 'out2'), src, '--strict']);
    expect(strict.code).toBe(1);
  });

  it("with no digest for the rebuilt shard, Meta's checklist.chk is checked first: intact is said, damaged stops the run (exit 2, nothing written)", async () => {
    const src = await metaFolder('mp2');
    await checklist(src);
    const ok = await runCli(['rebuild-base', join(work, 'out'), src]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/params\.json, consolidated\.00\.pth, consolidated\.01\.pth match .*checklist\.chk \(MD5\): Meta's files are intact/);
    const bytes = readFileSync(join(src, 'consolidated.00.pth'));
    bytes[bytes.length >> 1]! ^= 0x02;
    await writeFile(join(src, 'consolidated.00.pth'), bytes);
    const bad = await runCli(['rebuild-base', join(work, 'out2'), src]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/consolidated\.00\.pth does not match .*checklist\.chk \(MD5\): this original is damaged; download it again/);
    expect(await readdir(work)).not.toContain('out2');
  });

  it("a damaged Meta file: the shard fails its digest (exit 1), nothing kept, and checklist.chk names the file", async () => {
    const src = await metaFolder('mp2');
    await checklist(src);
    const shard = join(src, 'consolidated.01.pth');
    const bytes = readFileSync(shard);
    const rec = readZipDirectory(bytes, 0).records.find((x) => /\/data\/\d+$/.test(x.name))!;
    const at = rec.localOffset + 30 + bytes.readUInt16LE(rec.localOffset + 26) + bytes.readUInt16LE(rec.localOffset + 28);
    bytes[at + 3]! ^= 0x10;
    await writeFile(shard, bytes);
    const out = join(work, 'out');
    const r = await runCli(['rebuild-base', out, src, '--manifest', await manifest({ 'pytorch_model.bin': EXPECTED, 'tokenizer.model': TOKENIZER })]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/mismatch +pytorch_model\.bin/);
    expect(r.stderr).toMatch(/consolidated\.01\.pth does not match .*checklist\.chk \(MD5\): this original is damaged; download it again/);
    expect(r.stderr).not.toMatch(/consolidated\.00\.pth does not match/);
    expect(await finalNames(out)).toEqual(['tokenizer.model']);
  });

  it('decode against a damaged Meta folder names the damaged file from checklist.chk in the diagnosis', async () => {
    const src = await metaFolder('mp2');
    await checklist(src);
    const bytes = readFileSync(join(src, 'consolidated.00.pth'));
    const rec = readZipDirectory(bytes, 0).records.find((x) => /\/data\/\d+$/.test(x.name))!;
    const at = rec.localOffset + 30 + bytes.readUInt16LE(rec.localOffset + 26) + bytes.readUInt16LE(rec.localOffset + 28);
    bytes[at]! ^= 0x01;
    await writeFile(join(src, 'consolidated.00.pth'), bytes);
    const xor = join(work, 'xor');
    await mkdir(xor);
    await writeFile(join(xor, 'pytorch_model.bin'), Buffer.alloc(EXPECTED.length));
    const fine = join(work, 'SHA256SUMS');
    await writeFile(fine, `${sha256(EXPECTED)}  pytorch_model.bin\n`);
    const r = await runCli(['decode', join(work, 'out'), xor, src, '--manifest', fine]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/consolidated\.00\.pth does not match .*checklist\.chk \(MD5\): this original is damaged/);
    expect(await finalNames(join(work, 'out'))).toEqual([]);
  });

  it('refuses, before writing anything (exit 2): another size than --as names, a release whose base is another size, a folder without LLaMA, an hf:// source', async () => {
    const src = await metaFolder('mp1');
    const out = join(work, 'out');
    const wrongSize = await runCli(['rebuild-base', out, src, '--as', 'llama-13b-hf']);
    expect(wrongSize.code).toBe(2);
    expect(wrongSize.stderr).toMatch(/holds LLaMA of another size \(64x2, 4 heads\) than llama-13b-hf \(5120x40, 40 heads\); point the base at the LLaMA size llama-13b-hf was converted from/);
    const viaRelease = await runCli(['rebuild-base', out, src, '--as', 'metharme-7b']);
    expect(viaRelease.code).toBe(2);
    expect(viaRelease.stderr).toMatch(/than llama-7b-hf/);
    await mkdir(join(work, 'empty'));
    const empty = await runCli(['rebuild-base', out, join(work, 'empty')]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/holds no LLaMA weights to rebuild from/);
    const hub = await runCli(['rebuild-base', out, 'hf://huggyllama/llama-7b']);
    expect(hub.code).toBe(2);
    expect(hub.stderr).toMatch(/rebuild-base reads a local folder/);
    expect(await readdir(work)).not.toContain('out');
  });

  it('refuses a folder mixing two shardings, a Meta folder missing a shard, and tensors LLaMA-1 has not (exit 2, naming them)', async () => {
    const out = join(work, 'out');
    const mixed = join(work, 'mixed');
    await cp(join(TORCH, 'rebuild', 'bin-resharded'), mixed, { recursive: true });
    await cp(join(TORCH, 'rebuild', 'hf-2023'), mixed, { recursive: true });
    const r1 = await runCli(['rebuild-base', out, mixed]);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toMatch(/holds "model\.[a-z_.0-9]+" twice, in .*\.bin and in .*\.bin: the folder mixes two conversions; keep one conversion \(one set of shards\) in the folder/);

    const src = await metaFolder('mp2');
    await checklist(src);
    await rm(join(src, 'consolidated.01.pth'));
    const r2 = await runCli(['rebuild-base', out, src]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/lacks consolidated\.01\.pth, which its checklist\.chk lists; download the missing shard/);
    await rm(join(src, 'checklist.chk'));
    await rm(join(src, 'consolidated.00.pth'));
    await cp(join(META, 'mp2', 'consolidated.01.pth'), join(src, 'consolidated.01.pth'));
    const r3 = await runCli(['rebuild-base', out, src]);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/lacks consolidated\.00\.pth: Meta's model-parallel shards are numbered from 00 without gaps/);

    const extra = join(work, 'extra');
    await cp(join(TORCH, 'rebuild', 'bin-resharded'), extra, { recursive: true });
    await cp(join(TORCH, 'dtypes', 'pytorch_model-00001-of-00002.bin'), join(extra, 'adapter.bin'));
    const r4 = await runCli(['rebuild-base', out, extra]);
    expect(r4.code).toBe(2);
    expect(r4.stderr).toMatch(/holds tensors a LLaMA-1 conversion has not: /);
    expect(await readdir(work)).not.toContain('out');
  });
});
