/**
 * A shard that goes into the GGUF has no output file of its own (issue 21, review): decode --gguf from
 * hf:// opens no temporary file for it and records no resumable part of it (the GGUF is written
 * whole), and a part an interrupted plain decode kept of it is dropped, with the reason said.
 * Regression: each shard opened an empty temporary file beside the GGUF, and from the Hub its
 * checkpoints recorded bytes "kept" in that empty file.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { decode } from '../../src/index.js';
import { ResumeState } from '../../src/output/state.js';
import { folderFiles, standInEnv, useHubStandIn } from '../hub/stand-in.js';
import { finalNames, ROOT, writeRelease } from '../support/helpers.js';

const standIn = useHubStandIn();
const saved = { ...process.env };
const FIXTURES = join(ROOT, 'fixtures', 'gguf');
const SHARD = 'pytorch_model-00001-of-00002.bin';

let options: { outputDir: string; xorDir: string; baseDir: string; manifest: string; jobs: number };
beforeEach(async () => {
  const names = await readdir(join(FIXTURES, 'bfloat16'));
  const files = await Promise.all(
    names.map(async (name) => ({ name, fine: await readFile(join(FIXTURES, 'bfloat16', name)), base: await readFile(join(FIXTURES, 'float16', name)), plain: name.endsWith('.json') })),
  );
  const r = await writeRelease(join(standIn.work, 'release'), files);
  standIn.hub.repos.set('Org/tiny-xor', { commit: 'a1'.repeat(20), files: await folderFiles(r.xorDir, 'xor_encoded_files') });
  Object.assign(process.env, standInEnv(standIn.hub, standIn.work));
  options = { outputDir: join(standIn.work, 'out'), xorDir: 'hf://Org/tiny-xor/xor_encoded_files', baseDir: r.baseDir, manifest: r.manifest, jobs: 1 };
});
afterEach(() => {
  process.env = { ...saved };
  vi.restoreAllMocks();
});

it('an interrupted plain decode\'s kept part is dropped with the reason; no part of a shard going into the GGUF is recorded or kept', async () => {
  // What an interrupted plain decode of the shard leaves: its decoded prefix, recorded as resumable.
  const partial = join(options.outputDir, '.metharme-xor', 'partial');
  await mkdir(partial, { recursive: true });
  await writeFile(join(partial, SHARD), Buffer.alloc(8192, 7));
  const { ino } = await stat(join(partial, SHARD), { bigint: true });
  const earlier = await ResumeState.load(options.outputDir);
  await earlier.recordPartial(SHARD, { payload: `sha256:${'0'.repeat(64)}`, payloadSize: 186581, base: null, temp: { name: SHARD, ino: ino.toString() }, bytes: 8192, resumable: true });

  const saves: { partial?: Record<string, unknown> }[] = [];
  const original = ResumeState.prototype.save;
  vi.spyOn(ResumeState.prototype, 'save').mockImplementation(function (this: ResumeState) {
    saves.push(JSON.parse(JSON.stringify((this as unknown as { data: object }).data)));
    return original.call(this);
  });
  const notes: string[] = [];
  const report = await decode({ ...options, gguf: 'auto', onEvent: (e) => void (e.type === 'note' && notes.push(e.message)) });
  expect(report.exitCode).toBe(0);
  expect(await finalNames(options.outputDir)).toContain('out-BF16.gguf');
  expect(notes).toContain(`${SHARD}: an earlier run was interrupted in this file; restarting from byte 0 (it goes into the GGUF, which takes each shard whole)`);
  // The kept part is gone; no write records a part of any shard but the planted one, until it is dropped.
  expect(await readdir(partial).catch(() => [])).not.toContain(SHARD);
  expect(saves.length).toBeGreaterThan(0);
  for (const s of saves) {
    expect(Object.keys(s.partial ?? {}).filter((name) => name !== SHARD)).toEqual([]);
    if (s.partial?.[SHARD]) expect(s.partial[SHARD]).toMatchObject({ bytes: 8192 });
  }
  expect(Object.keys(saves.at(-1)!.partial ?? {})).toEqual([]);
}, 60_000);
