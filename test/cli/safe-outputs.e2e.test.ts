/**
 * End to end: no decoded file whose pickle could run code gets a final name (issue 13), on real
 * torch.save checkpoints and hand-made malicious pickles.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectSameTensors } from '../support/safetensors.js';
import { finalNames, removeDir, runCli, SHARD1, tempDir, TORCH, TORCH_BASE, writeRelease, type ReleaseFile } from '../support/helpers.js';

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(() => removeDir(work));

const SHARD = 'pytorch_model-00001-of-00001.bin';

/** A release whose fine-tuned shard is `unsafeFile`, XORed against a real base shard. */
async function release(unsafeFile: string) {
  const files: ReleaseFile[] = [
    { name: SHARD, fine: await readFile(join(TORCH, 'unsafe', unsafeFile)), base: await readFile(join(TORCH_BASE, SHARD1)) },
    { name: 'config.json', fine: Buffer.from('{"a": 1}\n'), base: Buffer.from('{"a": 2}\n'), plain: true },
  ];
  return writeRelease(join(work, 'r'), files);
}

describe('decode refuses a pickle that could run code', () => {
  it.each([
    ['posix-system.bin', 'posix.system (GLOBAL, REDUCE)'],
    ['os-system.bin', 'os.system (GLOBAL, REDUCE)'],
    ['stack-global-eval.bin', 'builtins.eval (STACK_GLOBAL, REDUCE)'],
    ['unknown-class.bin', 'mypackage.models.Thing (GLOBAL, REDUCE)'],
  ])('%s: unsafe, named, not kept, exit 1, although its digest matches', async (file, named) => {
    const { baseDir, xorDir, manifest, outDir } = await release(file);
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    const f = doc.files.find((x: { name: string }) => x.name === SHARD);
    expect(f).toMatchObject({ status: 'unsafe', matchedSource: expect.any(String) });
    expect(f.diagnosis[0].message).toContain(named);
    expect(doc.totals.unsafe).toBe(1);
    expect(r.stderr).toContain(`its pickle references ${named}, outside torch's weights-only allowlist`);
    expect(r.stderr).toMatch(/NOT SAFE TO LOAD; the output was not kept/);
    expect(await finalNames(outDir)).toEqual(['config.json']);
  });

  it('--allow-unsafe-pickle keeps it, with a loud warning that --quiet does not hide (exit 0)', async () => {
    const { baseDir, xorDir, manifest, outDir } = await release('os-system.bin');
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--allow-unsafe-pickle', '-q']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: pytorch_model-00001-of-00001\.bin: its pickle references os\.system .*KEPT because --allow-unsafe-pickle was given/);
    expect(await finalNames(outDir)).toEqual(['config.json', SHARD]);
  });

  it('a rerun does not report a kept unsafe file as fine', async () => {
    const { baseDir, xorDir, manifest, outDir } = await release('os-system.bin');
    await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--allow-unsafe-pickle']);
    // Without the state (as after a copy), the output is hashed again, and judged again.
    await removeDir(join(outDir, '.metharme-xor'));
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).files.find((x: { name: string }) => x.name === SHARD).status).toBe('unsafe');
  });

  it('verify reports an unsafe file as unsafe (exit 1), even though it matches its digest', async () => {
    const { baseDir, xorDir, manifest, outDir } = await release('stack-global-eval.bin');
    await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--allow-unsafe-pickle']);
    const r = await runCli(['verify', outDir, '--manifest', manifest, '--json']);
    expect(r.code).toBe(1);
    const f = JSON.parse(r.stdout).files.find((x: { name: string }) => x.name === SHARD);
    expect(f).toMatchObject({ status: 'unsafe' });
    expect(r.stdout).toMatch(/builtins\.eval \(STACK_GLOBAL, REDUCE\)/);
  });

  it('real checkpoints pass the check: the real-checkpoint release decodes and verifies (exit 0)', async () => {
    const out = join(work, 'out');
    const r = await runCli(['decode', out, join(TORCH, 'xor_encoded_files'), TORCH_BASE, '--manifest', join(TORCH, 'SHA256SUMS')]);
    expect(r.code).toBe(0);
    expect((await runCli(['verify', out, '--manifest', join(TORCH, 'SHA256SUMS')])).code).toBe(0);
  });
});

describe('decode --safetensors', () => {
  it('writes every shard as safetensors in the same pass, tensors equal to torch.load\'s, the index rewritten, no .bin left', async () => {
    const out = join(work, 'out');
    const r = await runCli(['decode', out, join(TORCH, 'xor_encoded_files'), TORCH_BASE, '--manifest', join(TORCH, 'SHA256SUMS'), '--safetensors']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const names = await finalNames(out);
    expect(names.filter((n) => n.endsWith('.bin') || n === 'pytorch_model.bin.index.json')).toEqual([]);
    const expected = JSON.parse(await readFile(join(TORCH, 'finetune-tensors.json'), 'utf8'));
    for (const k of [1, 2, 3]) {
      const shard = `model-0000${k}-of-00003.safetensors`;
      expect(names).toContain(shard);
      expectSameTensors(await readFile(join(out, shard)), expected[`pytorch_model-0000${k}-of-00003.bin`]);
    }
    const binIndex = JSON.parse(await readFile(join(TORCH, 'finetune', 'pytorch_model.bin.index.json'), 'utf8'));
    const index = JSON.parse(await readFile(join(out, 'model.safetensors.index.json'), 'utf8'));
    expect(index.metadata.total_size).toBe(binIndex.metadata.total_size);
    expect(Object.keys(index.weight_map).sort()).toEqual(Object.keys(binIndex.weight_map).sort());
    for (const [tensor, shard] of Object.entries(index.weight_map)) expect(shard).toBe((binIndex.weight_map[tensor] as string).replace(/^pytorch_model/, 'model').replace(/\.bin$/, '.safetensors'));
    // Rerun: recognised from the state, nothing read again.
    const again = await runCli(['decode', out, join(TORCH, 'xor_encoded_files'), TORCH_BASE, '--manifest', join(TORCH, 'SHA256SUMS'), '--safetensors']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/10 already present/);
  });

  it.each([
    ['fp16, bf16, fp32 and a scalar', 'pytorch_model-00001-of-00002.bin', 'pytorch_model-00001-of-00002.bin'],
    ['shared storages and a view with an offset', 'pytorch_model-00002-of-00002.bin', 'pytorch_model-00002-of-00002.bin'],
    ['a ZIP64 archive (zip64 extra fields, 24-byte data descriptors)', 'zip64/pytorch_model-00001-of-00002.bin', 'pytorch_model-00001-of-00002.bin'],
  ])('%s', async (_what, file, expectedOf) => {
    const fine = await readFile(join(TORCH, 'dtypes', file));
    const name = expectedOf;
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(join(work, 'r'), [{ name, fine, base: await readFile(join(TORCH_BASE, SHARD1)) }]);
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--safetensors']);
    expect(r.code).toBe(0);
    const expected = JSON.parse(await readFile(join(TORCH, 'dtypes', 'expected-tensors.json'), 'utf8'));
    expectSameTensors(await readFile(join(outDir, name.replace('pytorch_model', 'model').replace('.bin', '.safetensors'))), expected[expectedOf]);
  });

  it.each([
    ['a view with strides (not contiguous)', join('dtypes', 'strided', 'pytorch_model-00001-of-00001.bin'), /tensor "cols" is a view with strides \[4\] \(not contiguous\); safetensors stores no strides; decode without --safetensors/],
    ['a legacy-format checkpoint', join('llama-base-legacy', 'pytorch_model-00001-of-00003.bin'), /it is in the legacy torch\.save format; only zip checkpoints \(torch >= 1\.6\) are converted/],
  ])('refuses %s clearly (exit 2) before anything is kept', async (_what, file, message) => {
    const name = 'pytorch_model-00001-of-00001.bin';
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(join(work, 'r'), [{ name, fine: await readFile(join(TORCH, file)), base: await readFile(join(TORCH_BASE, SHARD1)) }]);
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--safetensors']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(await finalNames(outDir)).toEqual([]);
  });

  it('keeps no safetensors file whose .bin stream fails its digest', async () => {
    const out = join(work, 'out');
    const r = await runCli(['decode', out, join(TORCH, 'xor_encoded_files'), join(TORCH, 'llama-base-qk'), '--manifest', join(TORCH, 'SHA256SUMS'), '--safetensors', '--keep-going']);
    expect(r.code).toBe(1);
    const names = await finalNames(out);
    expect(names).not.toContain('model-00001-of-00003.safetensors');
    expect(names).not.toContain('model-00002-of-00003.safetensors');
    expect(names).toContain('model-00003-of-00003.safetensors');
  });

  it('a conversion found without the state of its run is not known to be ours: refused even with --force (exit 2), nothing touched (changed: issue 19)', async () => {
    const out = join(work, 'out');
    const args = ['decode', out, join(TORCH, 'xor_encoded_files'), TORCH_BASE, '--manifest', join(TORCH, 'SHA256SUMS'), '--safetensors'];
    expect((await runCli(args)).code).toBe(0);
    await removeDir(join(out, '.metharme-xor'));
    const before = await finalNames(out);
    for (const extra of [[], ['--force']]) {
      const r = await runCli([...args, ...extra]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/out: holds 10 files that metharme-xor did not write \(.*\), which this decode would replace; the output folder must be new, empty, or one an earlier decode wrote/);
      expect(await finalNames(out)).toEqual(before);
    }
  });
});
