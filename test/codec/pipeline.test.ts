import { createHash } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pipeline } from '../../src/codec/pipeline.js';
import { FileSource, GzipSource, type ByteSource } from '../../src/codec/sources.js';
import { InputError, InterruptedError } from '../../src/errors.js';
import { referenceXor, removeDir, seededBytes, sha256, tempDir } from '../support/helpers.js';

const CHUNK = 4096;
let dir: string;
let pipeline: Pipeline;

beforeAll(async () => {
  dir = await tempDir();
  // Small chunks so chunk boundaries, short reads and slot reuse are all exercised on small data.
  pipeline = new Pipeline({ chunkBytes: CHUNK, slots: 3 });
});
afterAll(async () => {
  await pipeline.close();
  await removeDir(dir);
});

async function runXor(payload: Buffer, base: Buffer, opts: { gzip?: boolean; hashBase?: boolean; hashSource?: boolean } = {}) {
  const p = join(dir, 'payload');
  const b = join(dir, 'base');
  const o = join(dir, 'out');
  await writeFile(p, opts.gzip ? gzipSync(payload) : payload);
  await writeFile(b, base);
  const source = opts.gzip ? await GzipSource.open(p) : await FileSource.open(p);
  const baseSource = await FileSource.open(b);
  const handle = await open(o, 'w');
  const output = {
    path: o,
    write: async (data: Buffer, length: number, position: number) => {
      await handle.write(data, 0, length, position);
    },
  };
  try {
    const result = await pipeline.run({
      source,
      base: baseSource,
      output,
      algorithms: ['sha256', 'md5'],
      baseAlgorithms: opts.hashBase ? ['sha256', 'md5'] : undefined,
      sourceAlgorithms: opts.hashSource ? ['sha256', 'md5'] : undefined,
    });
    return { result, out: await readFile(o) };
  } finally {
    await handle.close();
    await source.close();
    await baseSource.close();
  }
}

describe('pipeline (payload XOR base -> file + digest)', () => {
  const sizes = [0, 1, 7, 8, 4095, 4096, 4097, 3 * 4096, 3 * 4096 + 5, 10 * 4096 + 4095];

  it.each(sizes)('is byte-exact for %i bytes with an equal-length base', async (n) => {
    const payload = seededBytes(n, n + 11);
    const base = seededBytes(n, n + 12);
    const { result, out } = await runXor(payload, base);
    const expected = referenceXor(payload, base);
    expect(out.equals(expected)).toBe(true);
    expect(result.bytes).toBe(n);
    expect(result.digests.sha256).toBe(sha256(expected));
    expect(result.digests.md5).toBe(createHash('md5').update(expected).digest('hex'));
  });

  it.each([
    [4097, 0],
    [4097, 1],
    [4097, 4096],
    [20_000, 4097],
    [20_000, 8191],
  ])('zero-pads a shorter base: payload %i, base %i', async (n, m) => {
    const payload = seededBytes(n, 1);
    const base = seededBytes(m, 2);
    const { result, out } = await runXor(payload, base);
    expect(out.equals(referenceXor(payload, base))).toBe(true);
    expect(out.subarray(m).equals(payload.subarray(m))).toBe(true);
    expect(result.baseBytes).toBe(m);
  });

  it.each([
    [0, 100],
    [4095, 4097],
    [4097, 50_000],
  ])('ignores the extra bytes of a longer base: payload %i, base %i', async (n, m) => {
    const payload = seededBytes(n, 3);
    const base = seededBytes(m, 4);
    const { out } = await runXor(payload, base);
    expect(out.length).toBe(n);
    expect(out.equals(referenceXor(payload, base))).toBe(true);
  });

  it.each([
    [0, 0, false],
    [5, 5, false],
    [3 * 4096 + 5, 3 * 4096 + 5, false],
    [3 * 4096 + 5, 3 * 4096 + 5, true],
    [20_000, 4097, false],
    [20_000, 4097, true],
    [20_000, 0, false],
    [4097, 50_000, true],
  ])('hashing the payload too (sourceAlgorithms, XORed into the base buffer): payload %i, base %i, --check-base %s', async (n, m, hashBase) => {
    const payload = seededBytes(n, 21);
    const base = seededBytes(m, 22);
    const { result, out } = await runXor(payload, base, { hashBase, hashSource: true });
    const expected = referenceXor(payload, base);
    expect(out.equals(expected)).toBe(true);
    expect(result.digests.sha256).toBe(sha256(expected));
    expect(result.sourceDigests).toEqual({ sha256: sha256(payload), md5: createHash('md5').update(payload).digest('hex') });
    // The base buffers hold the output: the base's own digest must still be of the base.
    if (hashBase) expect(result.baseDigests.sha256).toBe(sha256(base));
    expect(result.baseBytes).toBe(Math.min(n, m));
  });

  it.each([0, 1, 4097, 5 * 4096 + 3])('takes the payload\'s digests on the output\'s hash worker when asked (sharedSourceHasher), to the same digests: %i bytes', async (n) => {
    const payload = seededBytes(n, 25);
    const base = seededBytes(Math.max(1, n - 100), 26);
    const shared = new Pipeline({ chunkBytes: CHUNK, slots: 2, sharedSourceHasher: true });
    try {
      const expected = referenceXor(payload, base);
      const result = await shared.run({ source: memorySource(payload), base: memorySource(base), algorithms: ['sha256'], baseAlgorithms: ['sha256'], sourceAlgorithms: ['sha256', 'md5'] });
      expect(result.digests.sha256).toBe(sha256(expected));
      expect(result.baseDigests.sha256).toBe(sha256(base));
      expect(result.sourceDigests).toEqual({ sha256: sha256(payload), md5: createHash('md5').update(payload).digest('hex') });
    } finally {
      await shared.close();
    }
  });

  it('hashes a file of one chunk on its own thread, without the hash worker (which small files waited for)', async () => {
    const alone = new Pipeline({ chunkBytes: CHUNK, slots: 2 });
    // With its worker stopped, only a file that needs no worker can still be hashed.
    await alone.close();
    try {
      for (const n of [1, CHUNK - 1]) {
        const payload = seededBytes(n, 31);
        const base = seededBytes(n, 32);
        const result = await alone.run({ source: memorySource(payload), base: memorySource(base), algorithms: ['sha256', 'md5'] });
        const expected = referenceXor(payload, base);
        expect(result.digests).toEqual({ sha256: sha256(expected), md5: createHash('md5').update(expected).digest('hex') });
      }
      await expect(alone.run({ source: memorySource(seededBytes(CHUNK + 1, 33)), algorithms: ['sha256'] })).rejects.toThrow(/hash worker closed/);
    } finally {
      await alone.close();
    }
  });

  it('hashes the payload without a base too, and gives no source digests unless asked', async () => {
    const payload = seededBytes(3 * CHUNK + 7, 23);
    const source = memorySource(payload);
    const result = await pipeline.run({ source, algorithms: ['sha256'], sourceAlgorithms: ['sha256'] });
    expect(result.digests.sha256).toBe(sha256(payload));
    expect(result.sourceDigests.sha256).toBe(sha256(payload));
    const plain = await runXor(payload, seededBytes(10, 24));
    expect(plain.result.sourceDigests).toEqual({});
  });

  it.each([0, 1, 4096, 50_001])('decompresses gzip payloads on the fly (%i bytes)', async (n) => {
    const payload = seededBytes(n, 5);
    const base = seededBytes(n + 3, 6);
    const { result, out } = await runXor(payload, base, { gzip: true });
    expect(out.equals(referenceXor(payload, base))).toBe(true);
    expect(result.bytes).toBe(n);
  });

  it('reports a corrupt gzip payload as an input error naming the file', async () => {
    const good = gzipSync(seededBytes(100_000, 7));
    const p = join(dir, 'bad.gz');
    await writeFile(p, Buffer.concat([good.subarray(0, 1000), Buffer.alloc(500, 0xff)]));
    const source = await GzipSource.open(p);
    await expect(pipeline.run({ source, algorithms: ['sha256'] })).rejects.toThrow(InputError);
    await source.close();
    // The pipeline is reusable after a failure.
    const again = await runXor(seededBytes(10, 8), seededBytes(10, 9));
    expect(again.out.equals(referenceXor(seededBytes(10, 8), seededBytes(10, 9)))).toBe(true);
  });

  it('a gzip stream that fails before its first read is a corrupt payload, not a crash (the inflater ran ahead)', async () => {
    const bad = gzipSync(seededBytes(9000, 11));
    bad[bad.length >> 1]! ^= 0xff;
    const p = join(dir, 'early.gz');
    await writeFile(p, bad);
    const inner = await FileSource.open(p);
    for (const source of [await GzipSource.open(p), GzipSource.over(inner)]) {
      // The inflater reads and fails on its own while nothing has asked for bytes yet.
      await new Promise((resolve) => setTimeout(resolve, 200));
      await expect(source.read(Buffer.alloc(CHUNK), CHUNK)).rejects.toThrow(/gzip payload is corrupt \(Z_DATA_ERROR\)/);
      await source.close();
    }
  });

  it('stops at the next chunk once the signal is aborted', async () => {
    const p = join(dir, 'big');
    await writeFile(p, seededBytes(64 * 4096, 10));
    const source = await FileSource.open(p);
    const controller = new AbortController();
    let seen = 0;
    const run = pipeline.run({
      source,
      algorithms: ['sha256'],
      signal: controller.signal,
      onBytes: (n) => {
        seen += n;
        if (seen >= 2 * CHUNK) controller.abort('SIGINT');
      },
    });
    await expect(run).rejects.toBeInstanceOf(InterruptedError);
    expect(seen).toBeLessThan(64 * 4096);
    await source.close();
  });
});

describe('hashing the base while decoding (--check-base)', () => {
  it.each([
    [0, 0],
    [4096, 4096],
    [3 * 4096, 3 * 4096],
    [5000, 3 * 4096 + 17],
    [3 * 4096 + 17, 5000],
    [10 * 4096, 4096],
    [100, 50_000],
  ])('digests the whole base (payload %i, base %i), also past the payload end', async (n, m) => {
    const payload = seededBytes(n, 21);
    const base = seededBytes(m, 22);
    const { result, out } = await runXor(payload, base, { hashBase: true });
    expect(out.equals(referenceXor(payload, base))).toBe(true);
    expect(result.baseDigests.sha256).toBe(sha256(base));
    expect(result.baseDigests.md5).toBe(createHash('md5').update(base).digest('hex'));
  });

  it('hashes nothing extra when not asked', async () => {
    const { result } = await runXor(seededBytes(5000, 1), seededBytes(5000, 2));
    expect(result.baseDigests).toEqual({});
  });
});

/** A source over bytes in memory, read in pieces of at most `piece` (short reads are allowed). */
function memorySource(bytes: Buffer, piece = 1000): ByteSource {
  let at = 0;
  return {
    path: 'memory',
    read: async (buf: Buffer, want: number) => {
      let filled = 0;
      while (filled < want && at < bytes.length) {
        const n = Math.min(piece, want - filled, bytes.length - at);
        bytes.copy(buf, filled, at, at + n);
        at += n;
        filled += n;
      }
      return filled;
    },
    close: async () => undefined,
  };
}

describe('resuming inside a file', () => {
  for (const [label, baseLength] of [
    ['a base shorter than the kept part', 2 * CHUNK + 7],
    ['a base longer than the file', 7 * CHUNK],
    ['a base ending inside the rest', 4 * CHUNK + 5],
  ] as const) {
    it(`re-hashes the kept part, hashes its payload bytes with the rest and writes only the rest (${label})`, async () => {
      const payload = seededBytes(5 * CHUNK + 100, 91);
      const base = seededBytes(baseLength, 92);
      const fine = referenceXor(payload, base);
      const kept = 3 * CHUNK;
      const b = join(dir, 'resume-base');
      await writeFile(b, base);
      const baseSource = await FileSource.open(b);
      const writes: number[] = [];
      const chunks: number[] = [];
      const contiguous: number[] = [];
      const outBytes = Buffer.alloc(fine.length);
      fine.copy(outBytes, 0, 0, kept);
      try {
        const result = await pipeline.run({
          source: memorySource(payload.subarray(kept)),
          base: baseSource,
          output: { path: 'memory', write: async (d: Buffer, n: number, at: number) => void (writes.push(at), d.copy(outBytes, at, 0, n)) },
          algorithms: ['sha256'],
          baseAlgorithms: ['md5'],
          resume: { bytes: kept, written: memorySource(fine.subarray(0, kept), 777) },
          sourceAlgorithms: ['sha256'],
          onChunk: (_d, at) => chunks.push(at),
          onWritten: (n) => contiguous.push(n),
        });
        expect(result.digests.sha256).toBe(sha256(fine));
        expect(result.baseDigests.md5).toBe(createHash('md5').update(base).digest('hex'));
        // The kept part's payload (output XOR base) and the fetched rest make up the whole payload.
        expect(result.sourceDigests.sha256).toBe(sha256(payload));
        expect(result.bytes).toBe(fine.length);
        expect(result.baseBytes).toBe(Math.min(base.length, fine.length));
      } finally {
        await baseSource.close();
      }
      expect(outBytes.equals(fine)).toBe(true);
      // Nothing kept is written again; every byte is seen once, in order, by the chunk inspector.
      expect(Math.min(...writes)).toBe(kept);
      expect(chunks).toEqual(Array.from({ length: 6 }, (_, i) => i * CHUNK));
      expect(contiguous.at(-1)).toBe(fine.length);
      expect([...contiguous].sort((x, y) => x - y)).toEqual(contiguous);
    });
  }

  it('a kept part shorter on disk than recorded is an error, not a file decoded from garbage', async () => {
    const b = join(dir, 'resume-base');
    await writeFile(b, seededBytes(CHUNK * 4, 3));
    const baseSource = await FileSource.open(b);
    try {
      await expect(
        pipeline.run({
          source: memorySource(seededBytes(CHUNK, 4)),
          base: baseSource,
          algorithms: ['sha256'],
          resume: { bytes: 2 * CHUNK, written: memorySource(seededBytes(CHUNK + 10, 5)) },
        }),
      ).rejects.toThrow(/ended at byte 4106, before 8192/);
    } finally {
      await baseSource.close();
    }
  });
});

describe('gzip recognition', () => {
  it('needs the magic, the deflate method and clear reserved flags', async () => {
    const { isGzip } = await import('../../src/codec/sources.js');
    const { gzipSync } = await import('node:zlib');
    expect(isGzip(gzipSync(Buffer.from('x')))).toBe(true);
    expect(isGzip(Buffer.from([0x1f, 0x8b, 0x07, 0x00]))).toBe(false);
    expect(isGzip(Buffer.from([0x1f, 0x8b, 0x08, 0x20]))).toBe(false);
    expect(isGzip(Buffer.from([0x1f, 0x8b]))).toBe(false);
    expect(isGzip(Buffer.from([0x00, 0x00, 0x08, 0x00]))).toBe(false);
  });
});

describe('codec properties', () => {
  it('decode(encode(x)) == x for random sizes, bases and chunk sizes', async () => {
    const fc = (await import('fast-check')).default;
    const { writeFile: write, readFile: read } = await import('node:fs/promises');
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 70_000 }),
        fc.integer({ min: 0, max: 70_000 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer(),
        fc.boolean(),
        fc.boolean(),
        async (size, baseSize, blocks, slots, seed, hashSource, hashBase) => {
          const p = new Pipeline({ chunkBytes: blocks * 4096, slots });
          try {
            const fine = seededBytes(size, seed);
            const base = seededBytes(baseSize, seed ^ 0x5555);
            const encoded = referenceXor(fine, base);
            const payloadPath = join(dir, 'prop-payload');
            const basePath = join(dir, 'prop-base');
            const outPath = join(dir, 'prop-out');
            await write(payloadPath, encoded);
            await write(basePath, base);
            const source = await FileSource.open(payloadPath);
            const baseSource = await FileSource.open(basePath);
            const handle = await open(outPath, 'w');
            try {
              const result = await p.run({
                source,
                base: baseSource,
                output: { path: outPath, write: async (d: Buffer, n: number, at: number) => void (await handle.write(d, 0, n, at)) },
                algorithms: ['sha256'],
                sourceAlgorithms: hashSource ? ['sha256'] : undefined,
                baseAlgorithms: hashBase ? ['sha256'] : undefined,
              });
              expect(result.digests.sha256).toBe(sha256(fine));
              if (hashSource) expect(result.sourceDigests.sha256).toBe(sha256(encoded));
              if (hashBase) expect(result.baseDigests.sha256).toBe(sha256(base));
            } finally {
              await handle.close();
              await source.close();
              await baseSource.close();
            }
            expect((await read(outPath)).equals(fine)).toBe(true);
          } finally {
            await p.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
