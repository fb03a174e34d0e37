/**
 * Structure checks on a file's first bytes: does this look like a PyTorch checkpoint, a safetensors
 * file, a JSON document? They never decide a file's fate when a digest exists; with no digest, a
 * decoded file is refused only where its base shows the structure the decoded bytes lack (a base
 * that is a checkpoint, decoded into something that is not). They cannot tell one checkpoint from
 * another: a base converted with another transformers version looks exactly like the right one.
 */
import type { DiagnosisCode } from '../types.js';

export interface SanityProblem {
  code: Extract<DiagnosisCode, 'not-a-checkpoint' | 'invalid-safetensors' | 'invalid-json'>;
  message: string;
}

const ZIP_LOCAL_HEADER = [0x50, 0x4b, 0x03, 0x04];
/** safetensors headers are JSON of a few kB to a few MB; anything past this is not a header length. */
const MAX_SAFETENSORS_HEADER = 100_000_000;

function startsWith(head: Uint8Array, bytes: readonly number[]): boolean {
  return bytes.every((b, i) => head[i] === b);
}

/** PyTorch checkpoints are zip archives since torch 1.6; older ones are a pickle (protocol 2+). */
export function looksLikeCheckpoint(head: Uint8Array): boolean {
  const legacyPickle = head[0] === 0x80 && head[1] !== undefined && head[1] >= 2 && head[1] <= 5;
  return startsWith(head, ZIP_LOCAL_HEADER) || legacyPickle;
}

/**
 * `head` is a file's first bytes; `totalBytes` its full size when known (not for gzip). Returns what
 * its structure lacks for a file of that name, undefined when it looks right, or 'unknown' when
 * the bytes at hand cannot tell (a JSON file longer than the head, a name with no known structure).
 */
export function structureProblem(name: string, head: Buffer, totalBytes: number | undefined): SanityProblem | undefined | 'unknown' {
  const lower = name.toLowerCase();
  if (lower.endsWith('.bin')) {
    if (head.length < 4) return 'unknown';
    return looksLikeCheckpoint(head) ? undefined : { code: 'not-a-checkpoint', message: 'does not start like a PyTorch checkpoint (a zip archive or a pickle)' };
  }
  if (lower.endsWith('.safetensors')) {
    if (head.length < 8) return { code: 'invalid-safetensors', message: 'is too short for a safetensors header' };
    const headerBytes = Number(head.readBigUInt64LE(0));
    const fits = totalBytes === undefined || 8 + headerBytes <= totalBytes;
    if (headerBytes < 2 || headerBytes > MAX_SAFETENSORS_HEADER || !fits || head[8] !== 0x7b) {
      return { code: 'invalid-safetensors', message: `has no sane safetensors header (length ${headerBytes})` };
    }
    if (head.length < 8 + headerBytes) return undefined;
    try {
      JSON.parse(head.subarray(8, 8 + headerBytes).toString('utf8'));
      return undefined;
    } catch {
      return { code: 'invalid-safetensors', message: 'has a safetensors header that is not JSON' };
    }
  }
  if (lower.endsWith('.json')) {
    if (totalBytes === undefined || head.length !== totalBytes) return 'unknown';
    try {
      JSON.parse(head.toString('utf8'));
      return undefined;
    } catch {
      return { code: 'invalid-json', message: 'does not parse as JSON' };
    }
  }
  return 'unknown';
}

/**
 * The decoded file lacks a structure its base has: the one structural finding that may refuse a file,
 * and only when no digest exists for it.
 */
export function lacksBaseStructure(
  name: string,
  decoded: { head: Buffer; size: number | undefined },
  base: { head: Buffer; size: number },
): SanityProblem | undefined {
  const baseProblem = structureProblem(name, base.head, base.size);
  if (baseProblem !== undefined) return undefined;
  const problem = structureProblem(name, decoded.head, decoded.size);
  return problem === 'unknown' ? undefined : problem;
}

/** The end-of-central-directory record's signature; a zip archive ends with it (then a comment of at most 64 KiB). */
const ZIP_END = Buffer.from([0x50, 0x4b, 0x05, 0x06]);
export const ZIP_TAIL_BYTES = 22 + 0xffff;

/**
 * A zip archive (torch checkpoints since 1.6) whose tail has no end-of-central-directory record was
 * cut short: proof of an incomplete download or copy. `head` and `tail` are the file's first bytes
 * and its last ZIP_TAIL_BYTES (or fewer).
 */
export function isTruncatedZip(head: Uint8Array, tail: Buffer): boolean {
  return startsWith(head, ZIP_LOCAL_HEADER) && !tail.includes(ZIP_END);
}
