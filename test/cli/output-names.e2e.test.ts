/**
 * End to end: two files of a release never go under one output name, where the later would replace
 * a file already reported (verified or not): a release file named as a converted shard's new name
 * or as the GGUF, or two names a case- or normalisation-insensitive file system holds as one.
 */
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { finalNames, removeDir, runCli, sha256, tempDir, TORCH_BASE, TORCH_SUMS, TORCH_XOR } from '../support/helpers.js';

let work: string;
let xorDir: string;
beforeEach(async () => {
  work = await tempDir();
  xorDir = join(work, 'xor');
  await cp(TORCH_XOR, xorDir, { recursive: true });
});
afterEach(() => removeDir(work));

/** Every file of a folder and its SHA-256: the inputs must come out of a refused run as they went in. */
async function contents(dir: string): Promise<Record<string, string>> {
  const names = (await readdir(dir)).sort();
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, sha256(await readFile(join(dir, n)))] as const)));
}

async function refused(args: string[], message: RegExp): Promise<void> {
  const before = await contents(xorDir);
  const out = join(work, 'out');
  const r = await runCli(['decode', out, xorDir, TORCH_BASE, '--manifest', TORCH_SUMS, ...args]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stdout).toBe('');
  expect(await finalNames(out)).toEqual([]);
  expect(await contents(xorDir)).toEqual(before);
}

describe('one output name, one input', () => {
  it('--safetensors --force with a release file named as the index it writes: refused before anything is written (it replaced the verified index, exit 0)', async () => {
    // Larger than the real index: decoded after it, it was renamed over it.
    await writeFile(join(xorDir, 'model.safetensors.index.json'), `${JSON.stringify({ metadata: {}, weight_map: { evil: 'x' } })}${' '.repeat(4096)}`);
    await refused(
      ['--safetensors', '--force'],
      /error: .*xor\/(pytorch_model\.bin\.index\.json|model\.safetensors\.index\.json): would be written as model\.safetensors\.index\.json, which is also the name of .*: one would replace the other; keep one of them in the XOR folder$/m,
    );
  });

  it('--gguf with a release file named as the GGUF: refused (exit 2), nothing written', async () => {
    await writeFile(join(xorDir, 'out-F16.gguf'), '{"not": "a gguf"}\n');
    await refused(['--gguf'], /out-F16\.gguf: would be written as out-F16\.gguf, which is also the name of a GGUF this decode can write: one would replace the other; take it out of the XOR folder$/m);
  });

  it('--chat-template with a release file named as the template: refused (exit 2); without it, the file decodes as any other (exit 0)', async () => {
    await writeFile(join(xorDir, 'chat_template.jinja'), '"{{ messages }}"\n');
    await refused(['--chat-template', '--force'], /chat_template\.jinja: would be written as chat_template\.jinja, which is also the name of the chat template --chat-template writes: one would replace the other; take it out of the XOR folder$/m);
    const r = await runCli(['decode', join(work, 'out'), xorDir, TORCH_BASE, '--manifest', TORCH_SUMS, '-q']);
    expect(r.code).toBe(0);
    expect(await readFile(join(work, 'out', 'chat_template.jinja'), 'utf8')).toBe('"{{ messages }}"\n');
  });

  it.each([
    ['case', 'config.json', 'CONFIG.json'],
    ['Unicode normalisation', 'caf\u00e9.json', 'cafe\u0301.json'],
  ])('two names equal but for %s (one file on macOS and Windows): refused on every platform (exit 2)', async (_what, a, b) => {
    await writeFile(join(xorDir, a), '{"a": 1}\n');
    await writeFile(join(xorDir, b), '{"b": 2}\n');
    await refused([], /differs from it only in case or Unicode normalisation, one file on macOS and Windows\): one would replace the other; keep one of them in the XOR folder$/m);
  });

  it('a release without such names decodes as before (exit 0, every file verified)', async () => {
    const r = await runCli(['decode', join(work, 'out'), xorDir, TORCH_BASE, '--manifest', TORCH_SUMS, '--safetensors', '-q']);
    expect(r.code).toBe(0);
    expect(await finalNames(join(work, 'out'))).toContain('model.safetensors.index.json');
  });
});
