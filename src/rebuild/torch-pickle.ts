/**
 * data.pkl as torch 1.13.1's `torch.save` writes it for a plain dict of tensors: CPython's C pickler
 * at protocol 2 over `Tensor._reduce_ex_internal` (shared/reference/llama-conversion.md, 3.1-3.2).
 * Every newly pickled object takes the next memo slot (BINPUT, LONG_BINPUT from 256 on); objects
 * pickled again by identity (the `_rebuild_tensor_v2` and storage-class globals, the 'storage' and
 * 'cpu' strings, the OrderedDict global) are BINGETs; keys, storage keys, tuples and reduce results
 * are new each time. The dict's items go in SETITEMS batches of 1000 (SETITEM for a dict of one).
 */

export type StorageClass = 'HalfStorage' | 'FloatStorage' | 'BFloat16Storage';

export interface PickledTensor {
  name: string;
  storageClass: StorageClass;
  /** '0', '1', ... in order of first appearance. */
  storageKey: string;
  /** Elements in the whole storage. */
  storageNumel: number;
  offset: number;
  shape: readonly number[];
  stride: readonly number[];
}

const BATCH = 1000;

class Writer {
  private parts: Buffer[] = [];
  private memo = 0;
  /** Objects pickled once and then fetched from the memo: their slot, by identity. */
  private readonly shared = new Map<string, number>();

  bytes(...b: number[]): void {
    this.parts.push(Buffer.from(b));
  }

  raw(b: Buffer): void {
    this.parts.push(b);
  }

  put(): void {
    const i = this.memo++;
    if (i < 256) return this.bytes(0x71, i);
    const b = Buffer.alloc(5);
    b[0] = 0x72;
    b.writeUInt32LE(i, 1);
    this.raw(b);
  }

  /** The shared object `id`: written by `first` and memoized the first time, a GET after. */
  once(id: string, first: () => void): void {
    const slot = this.shared.get(id);
    if (slot === undefined) {
      first();
      this.shared.set(id, this.memo);
      return this.put();
    }
    if (slot < 256) return this.bytes(0x68, slot);
    const b = Buffer.alloc(5);
    b[0] = 0x6a;
    b.writeUInt32LE(slot, 1);
    this.raw(b);
  }

  /** BINUNICODE, memoized (a new str object each time it is called). */
  str(text: string): void {
    const utf8 = Buffer.from(text, 'utf8');
    const head = Buffer.alloc(5);
    head[0] = 0x58;
    head.writeUInt32LE(utf8.length, 1);
    this.raw(Buffer.concat([head, utf8]));
    this.put();
  }

  global(module: string, name: string): void {
    this.once(`global:${module}.${name}`, () => this.raw(Buffer.from(`c${module}\n${name}\n`, 'latin1')));
  }

  /** save_long at protocol 2: BININT1, BININT2, BININT for what fits in a signed 32-bit int. */
  int(v: number): void {
    if (v >= 0 && v < 256) return this.bytes(0x4b, v);
    if (v >= 0 && v < 65536) return this.bytes(0x4d, v & 0xff, v >> 8);
    if (v >= -(2 ** 31) && v < 2 ** 31) {
      const b = Buffer.alloc(5);
      b[0] = 0x4a;
      b.writeInt32LE(v, 1);
      return this.raw(b);
    }
    // LONG1: little-endian two's complement, as short as the value allows.
    const bytes: number[] = [];
    let x = BigInt(v);
    for (;;) {
      bytes.push(Number(x & 0xffn));
      x >>= 8n;
      const top = bytes[bytes.length - 1]!;
      if ((x === 0n && top < 0x80) || (x === -1n && top >= 0x80)) break;
    }
    this.bytes(0x8a, bytes.length, ...bytes);
  }

  /** A tuple of ints: TUPLE1-3 after its items, else MARK ... TUPLE; memoized (never for the empty one). */
  intTuple(values: readonly number[]): void {
    if (values.length === 0) return this.bytes(0x29);
    if (values.length > 3) this.bytes(0x28);
    for (const v of values) this.int(v);
    this.bytes(values.length === 1 ? 0x85 : values.length === 2 ? 0x86 : values.length === 3 ? 0x87 : 0x74);
    this.put();
  }

  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function tensor(w: Writer, t: PickledTensor): void {
  w.global('torch._utils', '_rebuild_tensor_v2');
  w.bytes(0x28); // MARK: the 6 arguments
  // The persistent id ('storage', <class>, key, 'cpu', numel), then BINPERSID.
  w.bytes(0x28);
  w.once('str:storage', () => w.raw(Buffer.from([0x58, 7, 0, 0, 0, ...Buffer.from('storage')])));
  w.global('torch', t.storageClass);
  w.str(t.storageKey);
  w.once('str:cpu', () => w.raw(Buffer.from([0x58, 3, 0, 0, 0, ...Buffer.from('cpu')])));
  w.int(t.storageNumel);
  w.bytes(0x74);
  w.put();
  w.bytes(0x51);
  w.int(t.offset);
  w.intTuple(t.shape);
  w.intTuple(t.stride);
  w.bytes(0x89); // requires_grad False
  // backward_hooks: OrderedDict(), reduced to (OrderedDict, ()) with no items.
  w.global('collections', 'OrderedDict');
  w.bytes(0x29, 0x52);
  w.put();
  w.bytes(0x74);
  w.put();
  w.bytes(0x52);
  w.put();
}

/** The bytes of data.pkl for `torch.save(dict(tensors))` under torch 1.13.1. */
export function statePickle(tensors: readonly PickledTensor[]): Buffer {
  const w = new Writer();
  w.bytes(0x80, 0x02, 0x7d);
  w.put();
  if (tensors.length === 1) {
    w.str(tensors[0]!.name);
    tensor(w, tensors[0]!);
    w.bytes(0x73);
  } else if (tensors.length > 1) {
    let i = 0;
    do {
      w.bytes(0x28);
      const batch = tensors.slice(i, i + BATCH);
      for (const t of batch) {
        w.str(t.name);
        tensor(w, t);
      }
      w.bytes(0x75);
      i += batch.length;
      // The C pickler loops while a batch came out full: a size that is a multiple of 1000 ends with an empty batch.
      if (batch.length < BATCH) break;
    } while (true);
  }
  w.bytes(0x2e);
  return w.done();
}

/** Contiguous row-major strides for `shape`. */
export function contiguousStride(shape: readonly number[]): number[] {
  const stride = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i]!;
  }
  return stride;
}
