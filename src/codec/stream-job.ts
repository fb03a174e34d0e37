/**
 * What the streaming codec (pipeline.ts) is asked to do with one file, what it answers, and how it is
 * sized: the contract its callers (decode, verify, encode, the sinks) are written against.
 */
import type { Algorithm, Digests } from '../types.js';
import type { ByteSource } from './sources.js';

/** The hash worker's streams of one job. */
export const HASH_STREAMS = { output: 0, base: 1, source: 2 } as const;

export const DEFAULT_CHUNK_BYTES = 4 << 20;
export const DEFAULT_SLOTS = 6;
/**
 * For inputs read from the network. A Hub decode runs more threads than a local one (the socket on
 * the main thread, the payload's and the output's SHA-256 on two workers, writes on the pool): on
 * 2 cores they take turns, and the pipeline must hold enough bytes to ride out a turn without
 * leaving the socket undrained. Measured on the loopback bench (1 GiB, medians of 7-9 interleaved
 * runs), with the payload hashed on the main thread: 1 MiB x 4 slots 2.28 s, 4 MiB x 6 2.16 s,
 * 8 MiB x 3 1.93 s; with it hashed on its own worker, which frees a slot sooner: 4 MiB x 4 1.94 s,
 * 6 MiB x 3 1.78 s, 8 MiB x 3 1.77 s, 8 MiB x 2 1.72 s. 8 MiB x 2 (32 MiB with the two base buffers)
 * keeps a Hub decode with --safetensors, which has the most threads and buffers, under 150 MB of
 * RSS. Local reads gained nothing clear from 8 MiB chunks (within the noise), so they keep the
 * default.
 */
export const NETWORK_PIPELINE: PipelineOptions = { chunkBytes: 8 << 20, slots: 2 };
/**
 * For local inputs converted on the way (--gguf, --safetensors): the sink copies or converts each
 * chunk as it takes it, so a slot is free again sooner than after a direct write, and three do.
 * Measured on 1 GiB here: 3 slots took the same time as 6 within the noise and held 12 MiB less
 * (a Q8_0 GGUF's peak RSS 182 -> 159 MB together with smaller write stages).
 */
export const CONVERTING_PIPELINE: PipelineOptions = { chunkBytes: 2 << 20, slots: 3 };
/**
 * For network inputs converted on the way: a quarter of the network chunk, and the payload's
 * SHA-256 on the output's hash worker (the conversion keeps the cores busy; a second worker only
 * held memory). A 1 GiB --gguf q8_0 from a loopback Hub peaked at 177-184 MB with 8 MiB x 2,
 * 163-165 MB with 4 MiB x 2, 155-158 MB with 2 MiB x 2, and 145-149 MB with one hash worker, in the
 * same time within the noise (medians 4.2-4.6 s of 3 interleaved runs).
 */
export const NETWORK_CONVERTING_PIPELINE: PipelineOptions = { chunkBytes: 2 << 20, slots: 2, sharedSourceHasher: true };

/** The pipeline's sizing for a run: by where its inputs come from, and whether a sink converts. */
export function pipelineSizing(fromNetwork: boolean, converting: boolean): PipelineOptions {
  if (fromNetwork) return converting ? NETWORK_CONVERTING_PIPELINE : NETWORK_PIPELINE;
  return converting ? CONVERTING_PIPELINE : {};
}
/**
 * Page-cache outputs (where direct writes are not available) are written back every this many
 * bytes, so the final flush before the rename has little left to do.
 */
export const BACKGROUND_FLUSH_BYTES = 128 << 20;

/** Where the pipeline writes a file's bytes. */
export interface OutputSink {
  /** The final name, for error messages. */
  readonly path: string;
  /** Writes data[0, length) at `position`; data starts at a direct-I/O-aligned address. */
  write(data: Buffer, length: number, position: number): Promise<void>;
  /** Writes back what is written so far (page-cache sinks only); the pipeline calls it now and then. */
  flush?(): Promise<void>;
  /**
   * Why the decoded stream could not be converted (a sink that parses it). A corrupt payload's stream
   * need not parse, so this is weighed only once the digest has judged the bytes.
   */
  readonly refusal?: Error | undefined;
}

export interface StreamJob {
  /** The bytes to transform: a raw or gzip payload, or an existing file to hash. */
  source: ByteSource;
  /** XOR operand; bytes past its end count as zero. Absent: the source is copied unchanged. */
  base?: ByteSource | undefined;
  /** Absent: nothing is written (hash only). */
  output?: OutputSink | undefined;
  algorithms: readonly Algorithm[];
  /** Also hash the whole base file in these algorithms, as it is read (--check-base). */
  baseAlgorithms?: readonly Algorithm[] | undefined;
  /**
   * Also hash the source's own bytes in these algorithms (a Hub payload, for its listed SHA-256), on
   * a worker of their own (or the output's: sharedSourceHasher). Each chunk is then XORed into its
   * base buffer instead of in place, so the payload stays whole in its slot while it is hashed beside
   * the XOR, the write and the output's hash, instead of before them on the thread that reads the
   * network.
   */
  sourceAlgorithms?: readonly Algorithm[] | undefined;
  signal?: AbortSignal | undefined;
  /** Called with the output's first chunk before it is written; throwing stops the file at once. */
  inspectHead?: ((head: Buffer) => void) | undefined;
  /** Called with every output chunk before it is written (the buffer is reused afterwards). */
  onChunk?: ((data: Buffer, position: number) => void) | undefined;
  onBytes?: ((bytes: number) => void) | undefined;
  /** Called as the prefix of the output whose writes have all completed grows (writes finish out of order). */
  onWritten?: ((contiguousBytes: number) => void) | undefined;
  /**
   * Resuming inside a file: the output's first `bytes` are already written (by an interrupted run) and
   * are read back from `written` instead of decoded; the source starts at that offset. They are
   * hashed and inspected like decoded bytes, and the payload bytes they came from (output XOR base)
   * go to the source's digests, which so cover the whole payload. `bytes` is a multiple of the
   * direct-I/O alignment, so every later write stays aligned.
   */
  resume?: { bytes: number; written: ByteSource } | undefined;
}

export interface StreamResult {
  bytes: number;
  /** Bytes of the base that were used (less than `bytes` when the base is shorter). */
  baseBytes: number;
  digests: Digests;
  /** Digests of the whole base file, when `baseAlgorithms` were given. */
  baseDigests: Digests;
  /** Digests of the source's bytes, when `sourceAlgorithms` were given. */
  sourceDigests: Digests;
}

export interface PipelineOptions {
  chunkBytes?: number;
  slots?: number;
  /** A folder on the output file system: its support for direct writes is probed there. */
  outputDir?: string | undefined;
  /** true: a source's own digests (sourceAlgorithms) are taken on the output's hash worker, not a second one. */
  sharedSourceHasher?: boolean;
  /** false: use the JavaScript XOR kernel even where WebAssembly SIMD is available. */
  simd?: boolean;
}
