/** decode --chat-template (issue 21, item 5): the Metharme prompt format beside Hugging Face outputs, reported as an added file. */
import { lstat, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { METHARME_CHAT_TEMPLATE } from '../../src/index.js';
import { finalNames, removeDir, runCli, runCommand, SAMPLE_BASE, SAMPLE_SUMS, SAMPLE_XOR, tempDir } from '../support/helpers.js';

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(() => removeDir(work));

describe('decode --chat-template', () => {
  it('writes chat_template.jinja with the Metharme template, says so, and reports it as added; a rerun finds it present', async () => {
    const out = join(work, 'out');
    const r = await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS, '--chat-template', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).added).toEqual([{ name: 'chat_template.jinja', status: 'written' }]);
    expect(await readFile(join(out, 'chat_template.jinja'), 'utf8')).toBe(METHARME_CHAT_TEMPLATE);
    expect(await finalNames(out)).toContain('chat_template.jinja');
    const again = await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS, '--chat-template']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout + again.stderr).toMatch(/chat_template\.jinja: already present with the Metharme prompt format/);
  });

  it('never replaces another template without --force (exit 2)', async () => {
    const out = join(work, 'out');
    expect((await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS])).code).toBe(0);
    await writeFile(join(out, 'chat_template.jinja'), '{{ messages }}');
    const r = await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS, '--chat-template']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/chat_template\.jinja: already holds another chat template; use --force to replace it/);
    expect(await readFile(join(out, 'chat_template.jinja'), 'utf8')).toBe('{{ messages }}');
  });

  it('another template in a fresh output folder is refused before anything is decoded (exit 2)', async () => {
    const out = join(work, 'out');
    await mkdir(out);
    await writeFile(join(out, 'chat_template.jinja'), '{{ messages }}');
    const r = await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS, '--chat-template']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/chat_template\.jinja: already holds another chat template; use --force to replace it/);
    expect(await finalNames(out)).toEqual(['chat_template.jinja']);
  });

  it('a FIFO where the template goes is refused at once, not read (it hung the run beyond SIGTERM): exit 2; --force replaces it with the template', async () => {
    const out = join(work, 'out');
    await mkdir(out);
    const made = await runCommand('mkfifo', [join(out, 'chat_template.jinja')]);
    expect(made.code).toBe(0);
    const args = ['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS, '--chat-template'];
    const r = await runCli(args, { timeout: 20_000, killSignal: 'SIGKILL' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/chat_template\.jinja: is not a regular file, where the chat template must go; use --force to replace it\n$/);
    expect(await finalNames(out)).toEqual(['chat_template.jinja']);
    const forced = await runCli([...args, '--force'], { timeout: 20_000, killSignal: 'SIGKILL' });
    expect(forced.code).toBe(0);
    expect(await readFile(join(out, 'chat_template.jinja'), 'utf8')).toBe(METHARME_CHAT_TEMPLATE);
  });

  it('a symlink where the template goes (to /dev/zero, to a file) is replaced, never read or written through (exit 0)', async () => {
    const out = join(work, 'out');
    await mkdir(out);
    const elsewhere = join(work, 'elsewhere.jinja');
    await writeFile(elsewhere, 'theirs');
    for (const target of ['/dev/zero', elsewhere]) {
      await removeDir(join(out, 'chat_template.jinja'));
      await symlink(target, join(out, 'chat_template.jinja'));
      const r = await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS, '--chat-template', '-q'], { timeout: 20_000, killSignal: 'SIGKILL' });
      expect(r.code).toBe(0);
      expect((await lstat(join(out, 'chat_template.jinja'))).isFile()).toBe(true);
      expect(await readFile(join(out, 'chat_template.jinja'), 'utf8')).toBe(METHARME_CHAT_TEMPLATE);
    }
    expect(await readFile(elsewhere, 'utf8')).toBe('theirs');
  });
});
