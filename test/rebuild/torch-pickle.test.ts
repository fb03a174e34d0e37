/**
 * The 2023 conversion's layout, checked against published digests (the index files of llama-7b-hf,
 * llama-13b-hf and OpenAssistant's llama-30b) and the data.pkl test vectors that torch 1.13.1 gave
 * for the true 7B and 13B tensor lists (shared/reference/llama-conversion.md, 2.4, 3.2 and 4.1).
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hfStateDict, LLAMA_DIMS } from '../../src/rebuild/llama-shapes.js';
import { shardIndexJson, shardStateDict } from '../../src/rebuild/shards.js';
import { contiguousStride, statePickle, type PickledTensor } from '../../src/rebuild/torch-pickle.js';
import { dataDescriptor, directory, layTorchZip, localHeader, shardRecords } from '../../src/rebuild/torch-zip.js';
import { readZipDirectory } from '../../src/release/zip-directory.js';
import { TORCH } from '../support/helpers.js';

const hash = (algorithm: string, data: string | Buffer) => createHash(algorithm).update(data).digest('hex');

function pickledShard(tensors: ReturnType<typeof hfStateDict>): PickledTensor[] {
  return tensors.map((t, i) => ({
    name: t.name,
    storageClass: t.dtype === 'F16' ? 'HalfStorage' : 'FloatStorage',
    storageKey: String(i),
    storageNumel: t.shape.reduce((n, d) => n * d, 1),
    offset: 0,
    shape: t.shape,
    stride: contiguousStride(t.shape),
  }));
}

describe('the shard rule and the index file reproduce the published digests', () => {
  it.each([
    ['7B', 'sha256', 'aca3c1facc89d12311a667c32e85ac86e625990992ea8a189e3b036ba371b931', [241, 82]],
    ['13B', 'sha256', '92c31ad5e853e9a6660e248871f9bd0cd273518de7ec12ca893e1b1078c10898', [153, 155, 95]],
    ['30B', 'md5', 'fecfda4fba7bfd911e187a85db5fa2ef', [7]],
  ] as const)('llama %s: pytorch_model.bin.index.json has %s %s', (size, algorithm, digest, counts) => {
    const shards = shardStateDict(hfStateDict(LLAMA_DIMS[size]));
    if (counts.length > 1) expect(shards.map((s) => s.tensors.length)).toEqual(counts);
    else expect(shards).toHaveLength(counts[0]);
    expect(hash(algorithm, shardIndexJson(shards))).toBe(digest);
  });
});

describe('data.pkl as torch 1.13.1 writes it', () => {
  it.each([
    ['7B', 0, 30149, '050ec4407096097216787f145d2c4c347c439af598c5e081ba5929bf68e905eb'],
    ['7B', 1, 9781, 'cd127e7ec3c1f661e951b1dc80c78e0aebedc0c2d607c5cdff2fb52e07a49c16'],
    ['13B', 0, 18837, '0017d6fc5836b83c534c9d5a33f35cae7654fe370d04cd908b30e7241b5ba2cd'],
    ['13B', 1, 19203, '175264f07ec2c2a6f6df9d88a0ca4307cd238033a7c71ce87a785961192dc10e'],
    ['13B', 2, 11433, '6bac0483d353a7d8e953c8b1d253d31ebd953f5c440b53eb44a702aaaf258ea9'],
  ] as const)('llama %s shard %i: %i bytes, sha256 %s', (size, index, length, digest) => {
    const shard = shardStateDict(hfStateDict(LLAMA_DIMS[size]))[index]!;
    const pkl = statePickle(pickledShard(shard.tensors));
    expect(pkl.length).toBe(length);
    expect(hash('sha256', pkl)).toBe(digest);
  });

  it('matches torch.save on the committed small checkpoints, byte for byte (their data.pkl entries)', () => {
    const vectors = JSON.parse(readFileSync(join(TORCH, 'pickle-vectors.json'), 'utf8')) as { tensors: PickledTensor[]; sha256: string; length: number }[];
    expect(vectors.length).toBeGreaterThan(0);
    for (const v of vectors) {
      const pkl = statePickle(v.tensors);
      expect(pkl.length).toBe(v.length);
      expect(hash('sha256', pkl)).toBe(v.sha256);
    }
  });
});

describe('the zip container as torch 1.13.1 writes it', () => {
  it('rebuilds whole torch.save files byte for byte from their tensors (data.pkl written here, storages taken from the file)', async () => {
    const dir = join(TORCH, 'zip-vectors');
    const described = JSON.parse(readFileSync(join(dir, 'tensors.json'), 'utf8')) as Record<string, PickledTensor[]>;
    for (const [file, tensors] of Object.entries(described)) {
      const original = readFileSync(join(dir, file));
      const archive = file.replace(/\.bin$/, '');
      const pkl = statePickle(tensors);
      const stored = readZipDirectory(original, 0).records;
      const bytesOf = (name: string) => {
        const rec = stored.find((r) => r.name === name)!;
        const at = rec.localOffset + 30 + original.readUInt16LE(rec.localOffset + 26) + original.readUInt16LE(rec.localOffset + 28);
        return original.subarray(at, at + rec.size);
      };
      const layout = layTorchZip(shardRecords(archive, pkl.length, tensors.map((t) => ({ key: t.storageKey, bytes: bytesOf(`${archive}/data/${t.storageKey}`).length }))));
      const parts: Buffer[] = [];
      const crcs: number[] = [];
      for (const r of layout.records) {
        const data = r.name.endsWith('/data.pkl') ? pkl : r.name.endsWith('/version') ? Buffer.from('3\n') : bytesOf(r.name);
        crcs.push(crc32(data));
        parts.push(localHeader(r), data, dataDescriptor(r, crc32(data)));
      }
      parts.push(directory(layout, crcs));
      const rebuilt = Buffer.concat(parts);
      expect(rebuilt.length, file).toBe(original.length);
      expect(rebuilt.equals(original), file).toBe(true);
    }
  });

  it.each([
    ['7B', [9_976_634_558, 3_500_315_539]],
    ['13B', [9_948_728_430, 9_904_165_024, 6_178_983_625]],
    ['30B', [9_818_324_627, 9_958_102_743, 9_896_734_715, 9_869_470_481, 9_869_470_445, 9_958_102_743, 5_687_903_281]],
  ] as const)('llama %s: the shard sizes the reference predicts (zip64 extras and 24-byte descriptors past 4 GiB)', (size, sizes) => {
    const shards = shardStateDict(hfStateDict(LLAMA_DIMS[size]));
    const got = shards.map((s) => {
      const tensors = pickledShard(s.tensors);
      const pkl = statePickle(tensors);
      const archive = s.file.replace(/\.bin$/, '');
      return layTorchZip(shardRecords(archive, pkl.length, tensors.map((t) => ({ key: t.storageKey, bytes: t.storageNumel * (t.storageClass === 'FloatStorage' ? 4 : 2) })))).total;
    });
    expect(got).toEqual(sizes);
  });
});
