/**
 * End to end (issue 19, item 11): folders given in the wrong order never get written, whatever the
 * flags. A hurried user puts the output folder last, after an earlier decode into it, or the base
 * folder first; the tool says what the order is and modifies no input.
 */
import { cp, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeDir, runCli, SAMPLE_BASE, SAMPLE_SUMS, SAMPLE_XOR, sha256, tempDir } from '../support/helpers.js';

let work: string;
let xor: string;
let base: string;
let out: string;
beforeEach(async () => {
  work = await tempDir();
  xor = join(work, 'xor_encoded_files');
  base = join(work, 'llama-base');
  out = join(work, 'metharme-out');
  await cp(SAMPLE_XOR, xor, { recursive: true });
  await cp(SAMPLE_BASE, base, { recursive: true });
});
afterEach(() => removeDir(work));

/** Every file in a folder tree with its SHA-256 and modification time: an input must not change at all. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    result[path.slice(dir.length)] = entry.isFile() ? `${sha256(await readFile(path))} ${(await stat(path)).mtimeMs}` : 'folder';
  }
  return result;
}

const ORDER = /the order is: decode <output-dir> <xor-dir> <base-dir>/;
const FLAGS = [[], ['--force'], ['--force', '--no-verify'], ['--force', '--manifest', SAMPLE_SUMS]];

describe('folders in the wrong order', () => {
  it.each(FLAGS)('output given last after an earlier decode into it (%j): exit 2, says so, no input touched', async (...flags) => {
    expect((await runCli(['decode', out, xor, base, '--manifest', SAMPLE_SUMS])).code).toBe(0);
    const before = [await snapshot(xor), await snapshot(base), await snapshot(out)];
    const r = await runCli(['decode', xor, base, out, ...flags]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/base folder is an output folder of metharme-xor \(it holds .*state\.json\); was the output folder given last\?/);
    expect(r.stderr).toMatch(ORDER);
    expect(r.stderr).not.toMatch(/use --force/);
    expect([await snapshot(xor), await snapshot(base), await snapshot(out)]).toEqual(before);
  });

  it.each(FLAGS)('base folder given first, the output folder missing (%j): exit 2 with the order, nothing written', async (...flags) => {
    const before = [await snapshot(xor), await snapshot(base)];
    const r = await runCli(['decode', base, xor, out, ...flags]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/base folder .*(ENOENT|does not exist|cannot)/i);
    expect(r.stderr).toMatch(ORDER);
    expect([await snapshot(xor), await snapshot(base)]).toEqual(before);
  });

  it.each(FLAGS)('base folder given first, the XOR folder as base (%j): the base is never written', async (...flags) => {
    const before = [await snapshot(xor), await snapshot(base)];
    const r = await runCli(['decode', base, out, xor, ...flags]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(ORDER);
    expect([await snapshot(xor), await snapshot(base)]).toEqual(before);
  });

  it.each(FLAGS)('the XOR folder given as the output, inputs after it (%j): refused before anything is created in it', async (...flags) => {
    const before = [await snapshot(xor), await snapshot(base)];
    const r = await runCli(['decode', xor, xor, base, ...flags]);
    expect(r.code).toBe(2);
    expect([await snapshot(xor), await snapshot(base)]).toEqual(before);
    const other = join(work, 'copy');
    await cp(xor, other, { recursive: true });
    const copied = await snapshot(other);
    const again = await runCli(['decode', other, xor, base, ...flags]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/holds \d+ files that metharme-xor did not write/);
    expect(again.stderr).toMatch(ORDER);
    expect(again.stderr).not.toMatch(/--force/);
    expect(await snapshot(other)).toEqual(copied);
  });
});
