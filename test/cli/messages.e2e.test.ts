/**
 * Messages that sent users the wrong way (issue 22, item 1), each as a user meets it: commander's
 * suggestions on one line (no literal \x0a), a mistyped command named as one rather than taken for
 * an output folder, and an output on a file system that stores nothing named as such.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { removeDir, runCli, SAMPLE_BASE, SAMPLE_XOR, sha256, tempDir } from '../support/helpers.js';

describe('messages a newcomer can follow', () => {
  it("an unknown command or option gets commander's suggestion on the same line (exit 2)", async () => {
    const command = await runCli(['verfy', 'x']);
    expect(command.code).toBe(2);
    expect(command.stderr.split('\n')[0]).toBe("metharme-xor: error: unknown command 'verfy' (Did you mean verify?)");
    const option = await runCli(['decode', 'a', 'b', 'c', '--jobz', '2']);
    expect(option.code).toBe(2);
    expect(option.stderr).not.toContain('\\x0a');
    expect(option.stderr.split('\n')[0]).toBe("metharme-xor: error: unknown option '--jobz' (Did you mean --jobs?)");
  });

  it('"decod a b c" is a mistyped command, not the model card form with "decod" as the output folder', async () => {
    const r = await runCli(['decod', 'a', 'b', 'c']);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(/running as/);
    expect(r.stderr.split('\n')[0]).toBe("metharme-xor: error: unknown command 'decod' (Did you mean decode?)");
  });

  it('an output under /proc is said to be on a file system that stores no files, not to lack free space', async () => {
    const r = await runCli(['decode', '/proc/metharme-xor-test', SAMPLE_XOR, SAMPLE_BASE]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/\/proc\/metharme-xor-test: is on a file system that stores no files \(such as \/proc or \/sys\); choose an output folder on a disk/);
    expect(r.stderr).not.toMatch(/free/);
  });

  it('check-base on a base missing a file says where base files come from, not "decode or download it"', async () => {
    const work = await tempDir();
    try {
      const base = join(work, 'llama');
      await mkdir(base);
      await writeFile(join(base, 'config.json'), '{}\n');
      const sums = join(work, 'SHA256SUMS.base');
      await writeFile(sums, `${sha256(Buffer.from('{}\n'))}  config.json\n${'0'.repeat(64)}  pytorch_model.bin\n`);
      const r = await runCli(['check-base', base, '--manifest', sums]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/pytorch_model\.bin: missing from .*; copy it from the conversion, or give decode the LLaMA you have: the base files it lacks are rebuilt/);
      expect(r.stderr).not.toMatch(/decode or download it/);
    } finally {
      await removeDir(work);
    }
  });
});
