/**
 * End to end: no decoded file whose pickle could run code gets a final name (issue 13), on real
 * torch.save checkpoints and hand-made malicious pickles.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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
