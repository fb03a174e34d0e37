/** The benchmark script runs and reports everything it promises (a small size: this is no timing test). */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HAS_PYTHON, ROOT, runCommand } from '../support/helpers.js';

describe('npm run bench', () => {
  it('measures the floors, the decode and the hashers, and reports ratios and peak RSS as JSON', async () => {
    const r = await runCommand(process.execPath, [join(ROOT, 'scripts', 'bench.mjs'), '--size', '24M', '--runs', '3', '--json', '--no-reference']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.bytes).toBe(24 * 2 ** 20);
    expect(result.cpu.model.length).toBeGreaterThan(0);
    expect(result.cpu.cores).toBeGreaterThan(0);
    expect(result.seconds.decode).toHaveLength(3);
    expect(result.seconds.copy).toHaveLength(3);
    expect(result.medianSeconds.decode).toBeGreaterThan(0);
    expect(result.ratios.decodeOverCopy).toBeGreaterThan(0);
    expect(result.medianSeconds.startup).toBeGreaterThan(0);
    expect(result.ratios.streamingOverHash).not.toBeNull();
    // (w), the durable-write floor (dd with direct writes and fdatasync), and (c) against the larger floor.
    expect(result.seconds.durable).toHaveLength(3);
    expect(result.ratios.decodeOverFloor).toBeCloseTo(result.medianSeconds.decode / Math.max(result.medianSeconds.hash, result.medianSeconds.durable), 6);
    expect(result.peakRssBytes).toBeGreaterThan(10e6);
    expect(result.hashers.nodeCryptoSha256GBps).toBeGreaterThan(0);
    expect(result.hashers.hashWasmSha256GBps).toBeGreaterThan(0);
    expect(result.seconds.safetensors).toHaveLength(3);
    expect(result.ratios.safetensorsOverDecode).toBeGreaterThan(0);
    expect(result.safetensorsPeakRssBytes).toBeGreaterThan(10e6);
    expect(result.seconds.hub).toHaveLength(3);
    expect(result.ratios.hubOverDecode).toBeGreaterThan(0);
    expect(result.hubPeakRssBytes).toBeGreaterThan(10e6);
    // The Hub case's bytes come from the sendfile CDN wherever python3 is.
    expect(result.cdn).toBe(HAS_PYTHON ? 'sendfile' : 'node');
    expect(result.seconds.hubSafetensors).toHaveLength(3);
    expect(result.hubSafetensorsPeakRssBytes).toBeGreaterThan(10e6);
    // CPU seconds of each case's processes (Linux: from /proc), and of the Hub stand-in apart.
    if (process.platform === 'linux') {
      for (const name of ['decode', 'safetensors', 'hub']) expect(result.medianCpuSeconds[name], name).toBeGreaterThan(0);
      expect(result.medianServerCpuSeconds).toBeGreaterThan(0);
    }
    expect(result.targets).toEqual({ decodeOverHashMax: 1.2, referenceOverDecodeMin: 5, peakRssMaxBytes: 150e6, safetensorsOverDecodeMax: 1.15, hubOverDecodeMax: 1.5 });
    // (h) and (i): the decode against a base rebuilt from safetensors and from Meta's layout; (j) and (k) into a GGUF; each over the exact base's.
    for (const name of ['exact', 'safetensors', 'meta', 'gguf', 'ggufQ8', 'ggufQ4']) {
      expect(result.rebuild.medianSeconds[name], name).toBeGreaterThan(0);
      // The spread of the runs, around their median.
      const [fastest, slowest] = result.rebuild.rangeSeconds[name];
      expect(fastest, name).toBeGreaterThan(0);
      expect(fastest, name).toBeLessThanOrEqual(result.rebuild.medianSeconds[name]);
      expect(slowest, name).toBeGreaterThanOrEqual(result.rebuild.medianSeconds[name]);
    }
    expect(result.rebuild.ratios.ggufOverExact).toBeGreaterThan(0);
    expect(result.rebuild.peakRssBytes.ggufQ8).toBeGreaterThan(10e6);
    expect(result.rebuild.ratios.safetensorsOverExact).toBeGreaterThan(0);
    expect(result.rebuild.ratios.metaOverExact).toBeGreaterThan(0);
    expect(result.rebuild.peakRssBytes.meta).toBeGreaterThan(10e6);
  }, 300_000);

  it('serves the Hub case from this process with --cdn node, and counts that server\'s CPU', async () => {
    const r = await runCommand(process.execPath, [join(ROOT, 'scripts', 'bench.mjs'), '--size', '8M', '--runs', '3', '--json', '--no-reference', '--cdn', 'node']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.cdn).toBe('node');
    expect(result.seconds.hub).toHaveLength(3);
    if (process.platform === 'linux') expect(result.medianServerCpuSeconds).toBeGreaterThan(0);
  }, 120_000);

  it('refuses an unknown --cdn', async () => {
    const r = await runCommand(process.execPath, [join(ROOT, 'scripts', 'bench.mjs'), '--cdn', 'nginx']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--cdn: sendfile or node, not "nginx"');
  });
});
