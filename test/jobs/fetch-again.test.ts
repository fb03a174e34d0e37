/**
 * A file received corrupt is fetched again into the same temporary file. Regression: the second
 * attempt ran inside the first one's try, so the first one's clean-up (its `finally`) ran beside the
 * second and could delete the second's temporary file before its commit ("finishing the file failed
 * (ENOENT)", seen once under load). The clean-up is slowed here so that the overlap always shows.
 */
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decode } from '../../src/index.js';
import { folderFiles, standInEnv, useHubStandIn } from '../hub/stand-in.js';
import { SHARD1, TORCH_BASE, TORCH_SUMS, TORCH_XOR } from '../support/helpers.js';

/** What happened to each temporary file, in order: `create:<name>`, `discard:<name>`, `commit:<name>`. */
const events: string[] = [];

vi.mock('../../src/output/temp-file.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/output/temp-file.js')>();
  return {
    ...real,
    createTemp: async (...args: Parameters<typeof real.createTemp>) => {
      const temp = await real.createTemp(...args);
      events.push(`create:${basename(temp.tempPath)}`);
      return temp;
    },
    discardTemp: async (temp: Parameters<typeof real.discardTemp>[0]) => {
      await new Promise((r) => setTimeout(r, 250));
      await real.discardTemp(temp);
      events.push(`discard:${basename(temp.tempPath)}`);
    },
    commitTemp: async (...args: Parameters<typeof real.commitTemp>) => {
      await real.commitTemp(...args);
      events.push(`commit:${basename(args[0].tempPath)}`);
    },
  };
});

const standIn = useHubStandIn();
const saved = { ...process.env };
beforeEach(async () => {
  events.length = 0;
  standIn.hub.repos.set('Org/tiny-xor', { commit: 'a1'.repeat(20), files: await folderFiles(TORCH_XOR, 'xor_encoded_files') });
  Object.assign(process.env, standInEnv(standIn.hub, standIn.work));
});
afterEach(() => {
  process.env = { ...saved };
});

describe('a file fetched again', () => {
  it.each([
    ['a .bin', [] as string[], SHARD1],
    ['a safetensors conversion', ['safetensors'], 'model-00001-of-00003.safetensors'],
  ])('%s: the first attempt has ended before the second creates its temporary file', async (_, flags, output) => {
    // The first request is planning's look at the first bytes; the fault hits the decode's.
    standIn.hub.fault(`xor_encoded_files/${SHARD1}`, 'pass', 'corrupt');
    const outputDir = join(standIn.work, 'out');
    const report = await decode({
      outputDir,
      xorDir: 'hf://Org/tiny-xor/xor_encoded_files',
      baseDir: TORCH_BASE,
      manifest: TORCH_SUMS,
      jobs: 1,
      safetensors: flags.includes('safetensors'),
    });
    expect(report.exitCode).toBe(0);
    expect(report.files.find((f) => f.name === SHARD1)).toMatchObject({ status: 'verified' });
    const mine = events.filter((e) => e.endsWith(`:${output}`)).map((e) => e.split(':')[0]);
    // Created, dropped (corrupt), created again and committed: nothing of the first after the second began.
    expect(mine.lastIndexOf('create')).toBeGreaterThan(0);
    expect(mine.slice(mine.lastIndexOf('create'))).toEqual(['create', 'commit']);
    expect(await readdir(outputDir)).toContain(output);
  }, 60_000);
});
