/**
 * decode --gguf (issue 21, items 1 and 3): a release of the tiny bf16 fine-tune (XORed against the
 * fp16 one, which plays the base) decodes straight into one GGUF in the same pass: every shard still
 * judged by its published digest, the GGUF named only when all matched, and its tensors exactly what
 * `gguf` makes from the decoded folder. llama.cpp loads it (node-llama-cpp, as in llama-judge).
 */
import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { finalNames, removeDir, ROOT, runCli, tempDir, writeRelease } from '../support/helpers.js';

const FIXTURES = join(ROOT, 'fixtures', 'gguf');
const JUDGE = join(ROOT, '.judge', 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
const reference = JSON.parse(readFileSync(join(FIXTURES, 'reference.json'), 'utf8')) as { prompts: number[][]; probabilities: { bfloat16: number[][] } };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
let nlc: Any;
let work: string;
beforeAll(async () => {
  if (!existsSync(JUDGE)) throw new Error('the judge is not installed: run "node scripts/install-judge.mjs" (npm test does)');
  nlc = await import(pathToFileURL(JUDGE).href);
});
beforeEach(async () => {
  work = await tempDir();
});
afterAll(() => removeDir(work));

/** Each tensor's bytes in GGUF `a` are those of the same tensor in `b` (the two may order them otherwise). */
async function expectSameTensors(a: string, b: string) {
  const infoA = await nlc.readGgufFileInfo(a, { readTensorInfo: true });
  const infoB = await nlc.readGgufFileInfo(b, { readTensorInfo: true });
  const key = (t: Any) => `${t.name} ${t.dimensions.join('x')} ${t.ggmlType}`;
  expect(infoA.fullTensorInfo.map(key).sort()).toEqual(infoB.fullTensorInfo.map(key).sort());
  const sorted = (info: Any) => [...info.fullTensorInfo].sort((x: Any, y: Any) => x.fileOffset - y.fileOffset);
  const spans = (info: Any, bytes: Buffer) =>
    new Map(sorted(info).map((t: Any, i: number, all: Any[]) => [t.name, bytes.subarray(Number(t.fileOffset), i + 1 < all.length ? Number(all[i + 1].fileOffset) : bytes.length)]));
  const inA = spans(infoA, await readFile(a));
  const inB = spans(infoB, await readFile(b));
  for (const [name, data] of inA) expect(data.equals(inB.get(name)!), name).toBe(true);
}

/**
 * A release of fixture `fine` XORed against fixture `base` (`damage`: a file of it with one bit
 * flipped; `config`: values its config.json says instead, its digest made of them).
 */
async function release(damage?: string, fine = 'bfloat16', base = 'float16', config: Record<string, unknown> = {}) {
  const names = await readdir(join(FIXTURES, fine));
  const files = await Promise.all(
    names.map(async (name) => {
      let bytes = await readFile(join(FIXTURES, fine, name));
      if (name === 'config.json') bytes = Buffer.from(JSON.stringify({ ...JSON.parse(bytes.toString('utf8')), ...config }));
      const against = await readFile(join(FIXTURES, base, name));
      // JSON ships plain, as later Pygmalion releases do; the shards and the tokenizer are XORed.
      return { name, fine: bytes, base: against, plain: name.endsWith('.json') };
    }),
  );
  const r = await writeRelease(join(work, `metharme-${fine}`), files);
  if (damage) {
    const path = join(r.xorDir, damage);
    const bytes = await readFile(path);
    bytes[bytes.length >> 1]! ^= 0x10;
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path, bytes);
  }
  return r;
}

describe('decode --gguf', () => {
  it('writes one GGUF instead of the shards, every shard verified, its tensors those gguf makes from the decoded folder', async () => {
    const r = await release();
    const run = await runCli(['decode', r.outDir, r.xorDir, r.baseDir, '--manifest', r.manifest, '--gguf', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc.gguf).toMatchObject({ type: 'BF16', tensors: 21, written: true, verified: true });
    expect(doc.files.filter((f: Any) => f.name.endsWith('.bin')).map((f: Any) => f.status)).toEqual(['verified', 'verified']);
    const names = await finalNames(r.outDir);
    expect(names).toContain('out-BF16.gguf');
    expect(names.filter((n) => n.endsWith('.bin'))).toEqual([]);
    expect(names).toContain('config.json');

    // The same tensors as the gguf command writes from the decoded folder.
    const plain = join(work, 'plain');
    expect((await runCli(['decode', plain, r.xorDir, r.baseDir, '--manifest', r.manifest])).code).toBe(0);
    const converted = join(work, 'converted.gguf');
    expect((await runCli(['gguf', plain, '--out', converted])).code).toBe(0);
    // Byte for byte, tensor by tensor (the two lay them out in another order).
    await expectSameTensors(join(r.outDir, 'out-BF16.gguf'), converted);
    const a = await nlc.readGgufFileInfo(join(r.outDir, 'out-BF16.gguf'));
    expect(a.metadata.metharme_xor.shards_verified).toBe(true);

    const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: 'error' });
    const model = await llama.loadModel({ modelPath: join(r.outDir, 'out-BF16.gguf') });
    const context = await model.createContext({ contextSize: 64 });
    const sequence = context.getSequence();
    const ids = reference.prompts[0]!;
    const items: Any[] = ids.slice(0, -1);
    items.push([ids.at(-1), { generateNext: { token: true, probabilities: true } }]);
    const probs: Map<number, number> = (await sequence.controlledEvaluate(items)).at(-1).next.probabilities;
    const want = reference.probabilities.bfloat16[0]!;
    expect(Math.max(...want.map((p, i) => Math.abs(p - (probs.get(i) ?? 0))))).toBeLessThan(1e-2);
    await model.dispose();
    await llama.dispose();
  }, 120_000);

  it('quantizes on the conversion workers in the same pass: q8_0 and q4_k_m are byte for byte what gguf writes from the decoded folder', async () => {
    // The K-quant fine-tune's tensors are large enough to go to the workers, a block of rows at a time
    // (one head of q/k rows); its base here is itself, so the payload is zeros and the decode exact.
    const r = await release(undefined, 'kquant', 'kquant');
    for (const type of ['q8_0', 'q4_k_m']) {
      const out = join(r.outDir, type);
      const run = await runCli(['decode', out, r.xorDir, r.baseDir, '--manifest', r.manifest, '--gguf', type, '--json']);
      expect(run.code, run.stderr).toBe(0);
      const label = type.toUpperCase();
      expect(JSON.parse(run.stdout).gguf).toMatchObject({ type: label, written: true, verified: true });
      const converted = join(work, `converted-${type}.gguf`);
      const conversion = await runCli(['gguf', join(FIXTURES, 'kquant'), '--type', type, '--out', converted]);
      expect(conversion.code, conversion.stderr).toBe(0);
      await expectSameTensors(join(out, `${type}-${label}.gguf`), converted);
    }
  }, 120_000);

  it('gguf converts a safetensors folder to the tensors it makes from the .bin one, and refuses a header torch would refuse (exit 2, no GGUF)', async () => {
    const r = await release();
    const st = join(work, 'st');
    const decoded = await runCli(['decode', st, r.xorDir, r.baseDir, '--manifest', r.manifest, '--safetensors']);
    expect(decoded.code, decoded.stderr).toBe(0);
    const shards = (await finalNames(st)).filter((n) => n.endsWith('.safetensors'));
    expect(shards).toHaveLength(2);
    const fromSt = join(work, 'from-st.gguf');
    const conversion = await runCli(['gguf', st, '--out', fromSt]);
    expect(conversion.code, conversion.stderr).toBe(0);
    const fromBin = join(work, 'from-bin.gguf');
    expect((await runCli(['gguf', join(FIXTURES, 'bfloat16'), '--out', fromBin])).code).toBe(0);
    await expectSameTensors(fromSt, fromBin);

    // Two tensors of one size made to claim the same bytes, the header kept at its length: read by
    // offsets, the GGUF was written from the wrong bytes (exit 0); torch's safetensors refuses it.
    const { writeFile } = await import('node:fs/promises');
    const path = join(st, shards[0]!);
    const bytes = await readFile(path);
    const length = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.toString('utf8', 8, 8 + length)) as Record<string, { shape?: number[]; data_offsets?: number[] }>;
    const norms = Object.keys(header).filter((k) => k.endsWith('norm.weight'));
    expect(norms.length).toBeGreaterThan(1);
    header[norms[1]!]!.data_offsets = header[norms[0]!]!.data_offsets;
    const json = JSON.stringify(header);
    expect(Buffer.byteLength(json)).toBeLessThanOrEqual(length);
    Buffer.from(json.padEnd(length, ' ')).copy(bytes, 8);
    await writeFile(path, bytes);
    const refused = await runCli(['gguf', st, '--out', join(work, 'bad.gguf')]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${path}: is not a safetensors file that torch would load (`);
    expect(refused.stderr).toMatch(/\((two tensors overlap at byte \d+|its data has a hole at byte \d+)\); download or convert it again/);
    expect(existsSync(join(work, 'bad.gguf'))).toBe(false);
  }, 120_000);

  it('a damaged shard: it fails its digest, no GGUF gets its final name (exit 1)', async () => {
    const r = await release('pytorch_model-00002-of-00002.bin');
    const run = await runCli(['decode', r.outDir, r.xorDir, r.baseDir, '--manifest', r.manifest, '--gguf', 'q8_0', '--keep-going']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/mismatch +pytorch_model-00002-of-00002\.bin/);
    expect(run.stderr).toMatch(/out-Q8_0\.gguf: not written, as a shard did not go into it whole/);
    expect((await finalNames(r.outDir)).filter((n) => n.endsWith('.gguf'))).toEqual([]);
  }, 60_000);

  it('a verified config.json that says more than the shards hold: exit 2 naming it before any shard, no GGUF', async () => {
    // vocab_size 100000000 sized the vocabulary before anything checked it: the run allocated until
    // it ran out of memory.
    const r = await release(undefined, 'bfloat16', 'float16', { vocab_size: 100_000_000 });
    const started = performance.now();
    const run = await runCli(['decode', r.outDir, r.xorDir, r.baseDir, '--manifest', r.manifest, '--gguf']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/config\.json: describes a LLaMA of 1\.28e\+10 values \(vocab_size 100000000, .*\): at least 25\.6 GB, more than its 2 shards hold \(\d+ kB\); use the model's own config\.json/);
    expect((performance.now() - started) / 1000).toBeLessThan(20);
    expect((await finalNames(r.outDir)).filter((n) => n.endsWith('.gguf') || n.endsWith('.bin'))).toEqual([]);
  }, 60_000);

  it("carries config.json's linear rope_scaling into the GGUF, and says when a scaling is left out", async () => {
    const linear = await release(undefined, 'bfloat16', 'float16', { rope_scaling: { type: 'linear', factor: 2 } });
    const run = await runCli(['decode', linear.outDir, linear.xorDir, linear.baseDir, '--manifest', linear.manifest, '--gguf']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/rope_scaling/);
    expect((await nlc.readGgufFileInfo(join(linear.outDir, 'out-BF16.gguf'))).metadata.llama.rope.scaling).toEqual({ type: 'linear', factor: 2 });
    await removeDir(join(work, 'metharme-bfloat16'));
    const dynamic = await release(undefined, 'bfloat16', 'float16', { rope_scaling: { rope_type: 'dynamic', factor: 2 } });
    const said = await runCli(['decode', dynamic.outDir, dynamic.xorDir, dynamic.baseDir, '--manifest', dynamic.manifest, '--gguf']);
    expect(said.code, said.stderr).toBe(0);
    expect(said.stderr).toMatch(/warning: config\.json's rope_scaling of type "dynamic" is not in the GGUF/);
    expect((await nlc.readGgufFileInfo(join(dynamic.outDir, 'out-BF16.gguf'))).metadata.llama.rope.scaling).toBeUndefined();
  }, 120_000);

  it('refuses --gguf with --safetensors, and an unknown type (exit 2)', async () => {
    const r = await release();
    const both = await runCli(['decode', r.outDir, r.xorDir, r.baseDir, '--manifest', r.manifest, '--gguf', '--safetensors']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--gguf and --safetensors cannot be used together/);
    const unknown = await runCli(['decode', r.outDir, r.xorDir, r.baseDir, '--manifest', r.manifest, '--gguf', 'q3_k']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown GGUF type "q3_k"/);
  });
});
