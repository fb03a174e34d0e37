/**
 * encode, for publishers: fine-tuned XOR base -> payload files that `metharme-xor decode` and the
 * reference decoder turn back into the fine-tuned files, plus checksum lists of the fine-tuned files
 * (what users verify their decode against) and of the base files used (what they check their base
 * against). JSON files ship plain by default: git on Windows rewrites line endings of text files,
 * which corrupted XORed JSON in past releases.
 */
import { randomBytes } from 'node:crypto';
import { readdir, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createGzip } from 'node:zlib';
import { asReadError, asWriteError, InputError } from '../errors.js';
import type { Digests } from '../types.js';
import { formatManifest, type ManifestEntry } from '../release/manifest.js';
import { createTemp, commitTemp, discardTemp, prepareOutputDir, removeStaleFiles, renameWithRetry, STATE_DIR_NAME, stateDir, tidyOutputDir, type TempFile } from '../output/temp-file.js';
import { acquireLock } from '../output/lock.js';
import { checkOptions, COMMON_OPTIONS } from './options.js';
import { Pipeline } from '../codec/pipeline.js';
import type { OutputSink } from '../codec/stream-job.js';
import { checkOutputDir, isChecksumListName, requireDir } from '../plan/inputs.js';
import { refuseSharedOutputs } from '../plan/output-names.js';
import { FileSource, isGzip, type ByteSource } from '../codec/sources.js';
import { hashFile } from '../verify/hash-file.js';

export interface EncodeOptions {
  outputDir: string;
  fineDir: string;
  baseDir: string;
  /** Write gzip payloads, as the reference encoder's --compress does. */
  compress?: boolean;
  /** XOR JSON files too (by default they ship plain). */
  xorJson?: boolean;
  signal?: AbortSignal;
  onEvent?: (event: EncodeEvent) => void;
}

export interface EncodedFile {
  name: string;
  action: 'xor' | 'xor-gzip' | 'copy';
  /** Size of the fine-tuned file. */
  bytes: number;
  payloadBytes: number;
  sha256: string;
  baseSha256: string | null;
  /** SHA-256 of the payload file written (what SHA256SUMS.xor lists). */
  payloadSha256: string;
  seconds: number;
}

export interface EncodeReport {
  outputDir: string;
  files: EncodedFile[];
  manifests: { fineTuned: string; base: string; payloads: string };
  seconds: number;
}

export type EncodeEvent =
  | { type: 'warning'; message: string }
  | { type: 'file-start'; name: string; bytes: number }
  | { type: 'progress'; name: string; bytes: number }
  | { type: 'file-done'; file: EncodedFile };

export const FINE_TUNED_SUMS = 'SHA256SUMS';
export const BASE_SUMS = 'SHA256SUMS.base';
export const PAYLOAD_SUMS = 'SHA256SUMS.xor';

/** Streams gzip to a temporary file; chunks must arrive in order (the pipeline writes them so). */
class GzipSink implements OutputSink {
  private readonly gzip = createGzip();
  private written = 0;
  private queue: Promise<void> = Promise.resolve();
  private failure: unknown;
  readonly path: string;

  constructor(temp: TempFile) {
    this.path = temp.path;
    this.gzip.on('data', (chunk: Buffer) => {
      const at = this.written;
      this.written += chunk.length;
      this.queue = this.queue.then(() => temp.write(chunk, chunk.length, at)).catch((err) => {
        this.failure ??= err;
      });
    });
  }

  write(data: Buffer, length: number): Promise<void> {
    // The callback fires once zlib has consumed the bytes, so the pipeline may then reuse its slot.
    return new Promise((resolve, reject) => {
      this.gzip.write(data.subarray(0, length), (err) => (err ? reject(err) : resolve()));
    });
  }

  async finish(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.gzip.once('end', resolve);
      this.gzip.once('error', reject);
      this.gzip.end();
      this.gzip.resume();
    });
    await this.queue;
    if (this.failure) throw this.failure;
    return this.written;
  }
}

export async function encode(options: EncodeOptions): Promise<EncodeReport> {
  checkOptions(options, { outputDir: 'string', fineDir: 'string', baseDir: 'string' }, { ...COMMON_OPTIONS, compress: 'boolean', xorJson: 'boolean' });
  const started = performance.now();
  const fineDir = await requireDir(options.fineDir, 'fine-tuned folder');
  const baseDir = await requireDir(options.baseDir, 'base folder');
  const outputDir = await checkOutputDir(options.outputDir, [
    { path: fineDir, role: 'fine-tuned folder' },
    { path: baseDir, role: 'base folder' },
  ]);
  const names: { name: string; size: number; baseSize: number | undefined }[] = [];
  const entries = await readdir(fineDir, { withFileTypes: true }).catch((err) => {
    throw asReadError(err, fineDir);
  });
  for (const entry of entries) {
    if (entry.name.startsWith('.') || isChecksumListName(entry.name)) continue;
    const info = await stat(join(fineDir, entry.name)).catch((err) => {
      throw asReadError(err, join(fineDir, entry.name));
    });
    if (!info.isFile()) continue;
    const baseInfo = await stat(join(baseDir, entry.name)).catch(() => undefined);
    names.push({ name: entry.name, size: info.size, baseSize: baseInfo?.isFile() ? baseInfo.size : undefined });
  }
  // A release that holds them would decode on no platform (decode refuses it) and clash on macOS and Windows.
  refuseSharedOutputs(names.map((n) => ({ name: n.name, payloadPath: join(fineDir, n.name), output: n.name })), [], 'the fine-tuned folder');
  names.sort((a, b) => a.size - b.size || (a.name < b.name ? -1 : 1));
  for (const n of names) {
    if (n.baseSize === undefined && !n.name.endsWith('.json')) {
      throw new InputError(`has no base counterpart in ${baseDir}`, {
        file: join(fineDir, n.name),
        hint: 'only JSON files may ship without a base file; add the base file or leave this file out',
      });
    }
  }
  await prepareOutputDir(outputDir);
  const lock = await acquireLock(outputDir);
  await removeStaleFiles(outputDir);
  const pipeline = new Pipeline({ outputDir: stateDir(outputDir) });
  const files: EncodedFile[] = [];
  const fineSums = join(outputDir, FINE_TUNED_SUMS);
  const baseSums = join(outputDir, BASE_SUMS);
  const payloadSums = join(outputDir, PAYLOAD_SUMS);
  try {
    for (const n of names) {
      const t0 = performance.now();
      const finePath = join(fineDir, n.name);
      const basePath = join(baseDir, n.name);
      const plain = n.baseSize === undefined || (n.name.endsWith('.json') && !options.xorJson);
      const action: EncodedFile['action'] = plain ? 'copy' : options.compress ? 'xor-gzip' : 'xor';
      options.onEvent?.({ type: 'file-start', name: n.name, bytes: n.size });
      const onBytes = (bytes: number) => options.onEvent?.({ type: 'progress', name: n.name, bytes });
      // The fine-tuned file's digest needs its bytes before the XOR: one extra read, for publishers only.
      const fineDigest = plain ? undefined : (await hashFile(pipeline, finePath, ['sha256'], { signal: options.signal })).digests;
      const temp = await createTemp(outputDir, n.name, { direct: pipeline.directAligned && action === 'xor' });
      let committed = false;
      try {
        const sink = action === 'xor-gzip' ? new GzipSink(temp) : temp;
        const source: ByteSource = await FileSource.open(finePath);
        let base: ByteSource | undefined;
        let result;
        try {
          base = plain ? undefined : await FileSource.open(basePath);
          result = await pipeline.run({
            source,
            base,
            output: sink,
            // The bytes written are the payload itself, except for gzip (hashed after compression).
            algorithms: ['sha256'],
            baseAlgorithms: plain ? [] : ['sha256'],
            signal: options.signal,
            inspectHead: (head) => {
              // A raw payload that starts with gzip's bytes by chance: decoders that go by the magic misread it.
              if (action === 'xor' && isGzip(head)) {
                options.onEvent?.({
                  type: 'warning',
                  message: `${n.name}: the raw payload happens to start with the gzip signature (1f 8b 08); metharme-xor decodes it correctly (it does not inflate), but a decoder that goes by the first bytes may not; --compress avoids the ambiguity`,
                });
              }
            },
            onBytes,
          });
        } finally {
          await source.close();
          await base?.close();
        }
        const payloadBytes = sink instanceof GzipSink ? await sink.finish() : result.bytes;
        const payloadSha256 =
          sink instanceof GzipSink ? (await hashFile(pipeline, temp.tempPath, ['sha256'], { signal: options.signal })).digests.sha256! : result.digests.sha256!;
        await commitTemp(temp);
        committed = true;
        const digests: Digests = plain ? result.digests : fineDigest!;
        const file: EncodedFile = {
          name: n.name,
          action,
          bytes: result.bytes,
          payloadBytes,
          sha256: digests.sha256!,
          baseSha256: plain ? null : (result.baseDigests.sha256 ?? null),
          payloadSha256,
          seconds: (performance.now() - t0) / 1000,
        };
        files.push(file);
        options.onEvent?.({ type: 'file-done', file });
      } finally {
        if (!committed) await discardTemp(temp);
      }
    }
    const entry = (name: string, digest: string): ManifestEntry => ({ name, algorithm: 'sha256', digest, source: '' });
    const byName = [...files].sort((a, b) => (a.name < b.name ? -1 : 1));
    await writeAtomically(fineSums, formatManifest(byName.map((f) => entry(f.name, f.sha256))));
    await writeAtomically(baseSums, formatManifest(byName.filter((f) => f.baseSha256).map((f) => entry(f.name, f.baseSha256!))));
    await writeAtomically(payloadSums, formatManifest(byName.map((f) => entry(f.name, f.payloadSha256))));
  } finally {
    await pipeline.close();
    await lock.release();
    await tidyOutputDir(outputDir);
  }
  return {
    outputDir,
    files,
    manifests: { fineTuned: fineSums, base: baseSums, payloads: payloadSums },
    seconds: (performance.now() - started) / 1000,
  };
}

/** A unique temporary name, created exclusively (nothing planted there is written through), then renamed. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const temp = join(dirname(path), STATE_DIR_NAME, `${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(temp, text, { flag: 'wx', mode: 0o644 });
    await renameWithRetry(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw asWriteError(err, path, 'writing the checksum list');
  }
}
