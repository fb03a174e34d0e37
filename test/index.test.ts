/** The library API: the same decode and verify as the CLI, with typed results, errors and events. */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decode, InputError, verify, type DecodeEvent } from '../src/index.js';
import { fileSha256, removeDir, SAMPLE, tempDir } from './support/helpers.js';

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(async () => {
  await removeDir(work);
});

describe('library', () => {
  it('decode() returns a typed report and emits plan, progress and per-file events', async () => {
    const events: DecodeEvent[] = [];
    const outputDir = join(work, 'out');
    const report = await decode({
      outputDir,
      xorDir: join(SAMPLE, 'xor_encoded_files'),
      baseDir: join(SAMPLE, 'llama-base'),
      manifest: join(SAMPLE, 'SHA256SUMS'),
      onEvent: (e) => events.push(e),
    });
    expect(report.exitCode).toBe(0);
    expect(report.totals.verified).toBe(9);
    expect(events[0]!.type).toBe('plan');
    const done = events.filter((e) => e.type === 'file-done');
    expect(done).toHaveLength(9);
    const progressBytes = events.filter((e) => e.type === 'progress').reduce((s, e) => s + (e.type === 'progress' ? e.bytes : 0), 0);
    expect(progressBytes).toBe(report.totals.bytes);
    const tok = report.files.find((f) => f.name === 'tokenizer.model')!;
    expect(await fileSha256(join(outputDir, 'tokenizer.model'))).toBe(tok.actual);
  });

  it('throws typed errors carrying their exit code', async () => {
    const err = await decode({ outputDir: join(work, 'o'), xorDir: join(work, 'missing'), baseDir: work }).catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err.exitCode).toBe(2);
  });

  it('verify() reports per file', async () => {
    const report = await verify({ dir: join(SAMPLE, 'llama-base'), manifest: join(SAMPLE, 'llama-base.SHA256SUMS') });
    expect(report.exitCode).toBe(0);
    expect(report.files.every((f) => f.status === 'verified')).toBe(true);
  });
});
