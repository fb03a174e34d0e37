/**
 * A Hub file that finishes writes the resume state once (issue 22, item 3), not once to drop its
 * partial record and again to record the finished file; a refused one still drops its partial.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decode } from '../../src/index.js';
import { ResumeState } from '../../src/output/state.js';
import { folderFiles, standInEnv, useHubStandIn } from '../hub/stand-in.js';
import { checkpointBytes, referenceXor, seededBytes, sha256, TORCH_BASE, TORCH_SUMS, TORCH_XOR } from '../support/helpers.js';

const standIn = useHubStandIn();
const saved = { ...process.env };
beforeEach(async () => {
  standIn.hub.repos.set('Org/tiny-xor', { commit: 'a1'.repeat(20), files: await folderFiles(TORCH_XOR, 'xor_encoded_files') });
  Object.assign(process.env, standInEnv(standIn.hub, standIn.work));
});
afterEach(async () => {
  process.env = { ...saved };
  vi.restoreAllMocks();
});

/** What the state held at each write. */
function recordSaves(): { partial?: Record<string, unknown>; files: Record<string, unknown> }[] {
  const seen: { partial?: Record<string, unknown>; files: Record<string, unknown> }[] = [];
  const original = ResumeState.prototype.save;
  vi.spyOn(ResumeState.prototype, 'save').mockImplementation(function (this: ResumeState) {
    seen.push(JSON.parse(JSON.stringify((this as unknown as { data: object }).data)));
    return original.call(this);
  });
  return seen;
}

describe('resume state writes', () => {
  it('a Hub file resumed from a partial record is recorded finished by the write that drops that record (no write in between)', async () => {
    const name = 'pytorch_model.bin';
    const fine = checkpointBytes(24 << 20, 7);
    const base = seededBytes((24 << 20) - 12345, 11);
    standIn.hub.repos.set('Org/big-xor', { commit: 'b2'.repeat(20), files: new Map([[`xor/${name}`, referenceXor(fine, base)]]) });
    await mkdir(join(standIn.work, 'base'));
    await writeFile(join(standIn.work, 'base', name), base);
    await writeFile(join(standIn.work, 'SHA256SUMS'), `${sha256(fine)}  ${name}\n`);
    const options = { outputDir: join(standIn.work, 'out'), xorDir: 'hf://Org/big-xor/xor', baseDir: join(standIn.work, 'base'), manifest: join(standIn.work, 'SHA256SUMS'), jobs: 1 };
    // A first run stalls half-way and is stopped once a checkpoint has recorded its prefix.
    standIn.hub.fault(`xor/${name}`, 'pass', 'stall');
    const stop = new AbortController();
    const first = decode({ ...options, signal: stop.signal }).catch((err: unknown) => err);
    const state = join(standIn.work, 'out', '.metharme-xor', 'state.json');
    for (const deadline = Date.now() + 20_000; !(await readFile(state, 'utf8').catch(() => '')).includes('"partial"'); ) {
      if (Date.now() > deadline) throw new Error('no checkpoint was recorded');
      await new Promise((r) => setTimeout(r, 100));
    }
    stop.abort('SIGINT');
    await first;
    const saves = recordSaves();
    const report = await decode(options);
    expect(report.exitCode).toBe(0);
    expect(report.files[0]!.resumedAt).toBeGreaterThan(0);
    // Every write holds the file either as a partial record or as finished: never as neither.
    expect(saves.filter((s) => !s.partial?.[name] && !s.files[name])).toEqual([]);
    expect(saves.at(-1)!.files[name]).toBeDefined();
  }, 60_000);

  it('one write of the state per file decoded from the Hub', async () => {
    const save = vi.spyOn(ResumeState.prototype, 'save');
    const report = await decode({ outputDir: join(standIn.work, 'out'), xorDir: 'hf://Org/tiny-xor/xor_encoded_files', baseDir: TORCH_BASE, manifest: TORCH_SUMS, jobs: 1 });
    expect(report.exitCode).toBe(0);
    const decoded = report.files.filter((f) => f.status === 'verified').length;
    expect(decoded).toBe(10);
    // Checkpoints inside these small files record nothing; each finished file is recorded once.
    expect(save.mock.calls.length).toBe(decoded);
  });
});
