/**
 * The members of a legacy tar checkpoint, read as torch 1.13's `_legacy_load` reads them
 * (torch/serialization.py). Each reader is a generator that asks for the next pickle, bytes or a
 * skip, so that a member streams by without being held: raw storage bytes are skipped, only the
 * pickles between them are walked. Every pickle here is loaded by plain `pickle.load` (no
 * find_class of torch's), so each global it names would be imported and applied.
 */
import { PickleError, PickleIncomplete, walkPickle, type GlobalUse, type PickleWalk, type Value } from './pickle.js';

export type Need = { kind: 'pickle' } | { kind: 'read'; n: number } | { kind: 'skip'; n: number };
type Answer = PickleWalk | Buffer | undefined;
type MemberReader = Generator<Need, void, Answer>;

const PICKLE: Need = { kind: 'pickle' };
/** A pickle in a member larger than this is no checkpoint's (a 30B model's object pickle is < 1 MB). */
const MAX_MEMBER_PICKLE = 256 << 20;

/** The members torch reads, in the order it reads them. */
export const TORCH_TAR_MEMBERS = ['storages', 'tensors', 'pickle'] as const;
export type TorchTarMember = (typeof TORCH_TAR_MEMBERS)[number];

/** What the member holds is not what torch's reader needs: torch stops there with an error. */
class MemberError extends Error {}

/** torch._utils._element_size of each storage class's dtype. */
const ELEMENT_SIZE: Record<string, number> = {
  DoubleStorage: 8, FloatStorage: 4, HalfStorage: 2, BFloat16Storage: 2, LongStorage: 8, IntStorage: 4,
  ShortStorage: 2, CharStorage: 1, ByteStorage: 1, BoolStorage: 1, ComplexDoubleStorage: 16,
  ComplexFloatStorage: 8, QUInt8Storage: 1, QInt8Storage: 1, QInt32Storage: 4, QUInt4x2Storage: 1, QUInt2x4Storage: 1,
};

function count(walk: Answer, what: string): number {
  const root = (walk as PickleWalk).root;
  if (root.t !== 'int' || root.v < 0) throw new MemberError(`its ${what} count is not a plain integer`);
  return root.v;
}

function elementSize(root: Value): number {
  const items = root.t === 'tuple' || root.t === 'list' ? root.items : [];
  const cls = items.length === 3 && items[2]!.t === 'global' ? /^torch\.(?:cuda\.)?(\w+)$/.exec(items[2]!.ref)?.[1] : undefined;
  const size = cls === undefined ? undefined : ELEMENT_SIZE[cls];
  if (size === undefined) throw new MemberError('a storage record does not name a storage class');
  return size;
}

/** A pickled count; per storage a pickled (key, location, class), an int64 element count, the bytes; the views. */
function* storages(): MemberReader {
  const n = count(yield PICKLE, 'storage');
  for (let i = 0; i < n; i++) {
    const size = elementSize(((yield PICKLE) as PickleWalk).root);
    const numel = ((yield { kind: 'read', n: 8 }) as Buffer).readBigInt64LE(0);
    if (numel < 0n || numel * BigInt(size) > BigInt(Number.MAX_SAFE_INTEGER)) throw new MemberError(`storage ${i} claims ${numel} elements`);
    yield { kind: 'skip', n: Number(numel) * size };
  }
  yield PICKLE;
}

/** A pickled count; per tensor a pickled (key, storage key, class), int32 ndim, 4 bytes, sizes, strides, offset. */
function* tensors(): MemberReader {
  const n = count(yield PICKLE, 'tensor');
  for (let i = 0; i < n; i++) {
    yield PICKLE;
    const ndim = ((yield { kind: 'read', n: 8 }) as Buffer).readInt32LE(0);
    if (ndim < 0) throw new MemberError(`tensor ${i} has ${ndim} dimensions`);
    yield { kind: 'skip', n: 16 * ndim + 8 };
  }
}

function* object(): MemberReader {
  yield PICKLE;
}

const READERS: Record<TorchTarMember, () => MemberReader> = { storages, tensors, pickle: object };

/** One member's bytes, fed as they stream by, through its reader. */
export class MemberStream {
  readonly walks: PickleWalk[] = [];
  /** Globals of a pickle that broke (CPython applied them before it stopped). */
  readonly brokenGlobals: GlobalUse[] = [];
  problem: string | undefined;
  private readonly reader: MemberReader;
  private need: Need | undefined;
  private held: Buffer = Buffer.alloc(0);
  private triedAt = 0;

  constructor(readonly name: TorchTarMember) {
    this.reader = READERS[name]();
    this.answer(undefined);
  }

  get globals(): GlobalUse[] {
    return [...this.walks.flatMap((w) => w.globals), ...this.brokenGlobals];
  }

  feed(chunk: Uint8Array): void {
    let input = chunk;
    let at = 0;
    while (this.need && at < input.length) {
      const need = this.need;
      if (need.kind === 'skip') {
        const n = Math.min(need.n, input.length - at);
        at += n;
        if (n === need.n) this.answer(undefined);
        else this.need = { kind: 'skip', n: need.n - n };
      } else if (need.kind === 'read') {
        const n = Math.min(need.n - this.held.length, input.length - at);
        this.held = Buffer.concat([this.held, input.subarray(at, at + n)]);
        at += n;
        if (this.held.length === need.n) this.take(this.held);
      } else {
        this.held = Buffer.concat([this.held, input.subarray(at)]);
        at = input.length;
        // Walked again only when the bytes held have doubled: no quadratic work on a long pickle.
        if (this.held.length < 2 * this.triedAt) return;
        const rest = this.tryPickle(false);
        if (rest) [input, at] = [rest, 0];
      }
    }
  }

  /** The member's data ended: torch's reader, still wanting more, fails there. */
  end(): void {
    while (this.need?.kind === 'pickle') {
      const rest = this.tryPickle(true);
      if (!rest) break;
      // What followed the pickle in the held bytes is read on, to the member's end.
      this.feed(rest);
    }
    if (this.need && !this.problem) this.problem = `its "${this.name}" member ends before what torch reads from it`;
    this.need = undefined;
  }

  /** Walks the pickle held; returns the bytes past its STOP when it is whole. */
  private tryPickle(ended: boolean): Buffer | undefined {
    this.triedAt = this.held.length;
    try {
      const walk = walkPickle(this.held, 0);
      this.walks.push(walk);
      const rest = Buffer.from(this.held.subarray(walk.end));
      this.held = Buffer.alloc(0);
      this.triedAt = 0;
      this.answer(walk);
      return rest;
    } catch (err) {
      if (!(err instanceof PickleError)) throw err;
      if (err instanceof PickleIncomplete && !ended && this.held.length <= MAX_MEMBER_PICKLE) return undefined;
      this.brokenGlobals.push(...err.globalsBefore);
      this.fail(err instanceof PickleIncomplete ? `a pickle in its "${this.name}" member is cut short` : `a pickle in its "${this.name}" member: ${err.message}`);
      return undefined;
    }
  }

  private take(bytes: Buffer): void {
    this.held = Buffer.alloc(0);
    this.answer(bytes);
  }

  private answer(value: Answer): void {
    try {
      const next = this.reader.next(value);
      this.need = next.done ? undefined : next.value;
    } catch (err) {
      if (!(err instanceof MemberError)) throw err;
      this.fail(`its "${this.name}" member: ${err.message}`);
    }
  }

  private fail(problem: string): void {
    this.problem ??= problem;
    this.need = undefined;
    this.held = Buffer.alloc(0);
  }
}
