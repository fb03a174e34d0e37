import { mkdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { WriteError } from '../../src/errors.js';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ResumeState } from '../../src/output/state.js';
import { stateDir } from '../../src/output/temp-file.js';
import { removeDir, tempDir, withTmpfs } from '../support/helpers.js';

let dir: string;
let paths: { output: string; payload: string; base: string };
beforeEach(async () => {
  dir = await tempDir();
  await mkdir(stateDir(dir));
  paths = { output: join(dir, 'out.bin'), payload: join(dir, 'payload'), base: join(dir, 'base') };
  for (const p of Object.values(paths)) await writeFile(p, 'x');
});
afterEach(() => removeDir(dir));

describe('ResumeState', () => {
  it('remembers a recorded file across loads while output and inputs are unchanged', async () => {
    const state = await ResumeState.load(dir);
    await state.record('out.bin', paths, { sha256: 'ab' });
    const again = await ResumeState.load(dir);
    expect((await again.unchanged('out.bin', paths))?.digests).toEqual({ sha256: 'ab' });
    expect(await again.unchanged('other', paths)).toBeUndefined();
  });

  it.each(['output', 'payload', 'base'] as const)('forgets the entry when the %s changes (size or mtime)', async (which) => {
    const state = await ResumeState.load(dir);
    await state.record('out.bin', paths, { sha256: 'ab' });
    const before = await stat(paths[which]);
    await utimes(paths[which], before.atime, new Date(before.mtimeMs + 5000));
    expect(await state.unchanged('out.bin', paths)).toBeUndefined();
  });

  it('keeps a GGUF entry across loads; one that is damaged or names a file outside the partial folder is none, and never kept from tidying', async () => {
    const entry = { layout: 'ab', temp: { name: 'm-Q8_0.gguf', ino: '7' }, shards: { 's.bin': { digests: { sha256: 'cd' }, bytes: 9, placed: [['w', 64, 123]] as [string, number, number][] } } };
    await (await ResumeState.load(dir)).recordGguf(entry);
    const again = await ResumeState.load(dir);
    expect(again.ggufEntry()).toEqual(entry);
    expect(again.keptTemps()).toEqual(new Set(['m-Q8_0.gguf']));
    for (const bad of [
      { ...entry, temp: { name: '../../elsewhere', ino: '7' } },
      { ...entry, temp: { name: '.metharme-xor', ino: '7' } },
      { ...entry, shards: { 's.bin': { ...entry.shards['s.bin'], placed: [['w', 'x', 1]] } } },
      { ...entry, shards: null },
    ]) {
      await writeFile(join(stateDir(dir), 'state.json'), JSON.stringify({ version: 1, files: {}, gguf: bad }));
      const state = await ResumeState.load(dir);
      expect(state.ggufEntry()).toBeUndefined();
      expect(state.keptTemps()).toEqual(new Set());
    }
    await (await ResumeState.load(dir)).forgetGguf();
    expect((await ResumeState.load(dir)).ggufEntry()).toBeUndefined();
  });

  it('treats a damaged state file as empty (costs a re-check, never a wrong skip)', async () => {
    await writeFile(join(stateDir(dir), 'state.json'), '{"version":1,"files":');
    const state = await ResumeState.load(dir);
    expect(await state.unchanged('out.bin', paths)).toBeUndefined();
  });

  it('never writes through a link planted where a temporary name could be (v1 used state.json.partial)', async () => {
    const victim = join(dir, 'victim');
    await writeFile(victim, 'base bytes');
    await symlink(victim, join(stateDir(dir), 'state.json.partial'));
    const state = await ResumeState.load(dir);
    await state.record('out.bin', paths, { sha256: 'ab' });
    expect(await readFile(victim, 'utf8')).toBe('base bytes');
  });

  it('a full disk while saving is a WriteError (exit 3), not an internal error', async (ctx) => {
    const mount = join(dir, 'tiny');
    await withTmpfs(ctx, mount, 'size=64k', async () => {
      await mkdir(stateDir(mount));
      const small = { output: join(mount, 'o'), payload: paths.payload, base: paths.base };
      await writeFile(small.output, 'x');
      await writeFile(join(mount, 'filler'), Buffer.alloc(64 * 1024)).catch(() => undefined);
      const state = await ResumeState.load(mount);
      const err = await state.record('o', small, { sha256: 'ab'.repeat(32) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WriteError);
      expect((err as WriteError).exitCode).toBe(3);
    });
  });

  it('forget() drops an entry from what is saved next', async () => {
    const state = await ResumeState.load(dir);
    await state.record('out.bin', paths, { sha256: 'ab' });
    state.forget('out.bin');
    await state.save();
    const saved = JSON.parse(await readFile(join(stateDir(dir), 'state.json'), 'utf8'));
    expect(saved.files).toEqual({});
  });
});
