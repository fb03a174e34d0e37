/**
 * The tensors of a torch state dict, read from its walked data.pkl: for each name, the storage it
 * lives in (key, dtype, size) and its layout (offset, shape, stride). What a tensor is built from:
 * `_rebuild_tensor_v2(persistent_id, storage_offset, size, stride, requires_grad, hooks)`, with
 * persistent id `('storage', <StorageClass>, '<key>', '<location>', <numel>)`, possibly wrapped in
 * `_rebuild_parameter(tensor, requires_grad, hooks)` (torch/_utils.py, torch/serialization.py).
 */
import type { Value } from './pickle.js';

/** safetensors dtype names and element sizes, by torch storage class. */
export const STORAGE_DTYPES: Readonly<Record<string, { dtype: string; bytes: number }>> = {
  HalfStorage: { dtype: 'F16', bytes: 2 },
  BFloat16Storage: { dtype: 'BF16', bytes: 2 },
  FloatStorage: { dtype: 'F32', bytes: 4 },
  DoubleStorage: { dtype: 'F64', bytes: 8 },
  LongStorage: { dtype: 'I64', bytes: 8 },
  IntStorage: { dtype: 'I32', bytes: 4 },
  ShortStorage: { dtype: 'I16', bytes: 2 },
  CharStorage: { dtype: 'I8', bytes: 1 },
  ByteStorage: { dtype: 'U8', bytes: 1 },
  BoolStorage: { dtype: 'BOOL', bytes: 1 },
};

export interface TensorLayout {
  name: string;
  storageKey: string;
  dtype: string;
  elementBytes: number;
  /** Elements in the whole storage. */
  storageNumel: number;
  /** In elements. */
  offset: number;
  shape: number[];
  stride: number[];
}

/** A state dict that cannot be written as safetensors, and why. */
export class NotConvertible extends Error {}

/** Shapes, strides, offsets and sizes: anything but a non-negative safe integer is refused. */
function count(v: Value | undefined, what: string): number {
  if (v?.t !== 'int' || !Number.isSafeInteger(v.v) || v.v < 0) throw new NotConvertible(`${what} is not a non-negative integer`);
  return v.v;
}

function ints(v: Value | undefined, what: string): number[] {
  if (v?.t !== 'tuple') throw new NotConvertible(`${what} is not a tuple of integers`);
  return v.items.map((i) => count(i, `a value in ${what}`));
}

function tensorOf(name: string, v: Value): TensorLayout {
  if (v.t !== 'call' || v.fn.t !== 'global') throw new NotConvertible(`"${name}" is not a tensor`);
  const args = v.args.t === 'tuple' ? v.args.items : [];
  if (v.fn.ref === 'torch._utils._rebuild_parameter') return tensorOf(name, args[0] ?? { t: 'none' });
  if (v.fn.ref !== 'torch._utils._rebuild_tensor_v2' && v.fn.ref !== 'torch._utils._rebuild_tensor') {
    throw new NotConvertible(`"${name}" is built by ${v.fn.ref}, which safetensors cannot express`);
  }
  const [pid, offset, size, stride] = args;
  const id = pid?.t === 'persid' ? pid.id : undefined;
  const parts = id?.t === 'tuple' ? id.items : [];
  const [kind, cls, key, , numel] = parts;
  if (kind?.t !== 'str' || kind.v !== 'storage' || cls?.t !== 'global' || key?.t !== 'str' || numel?.t !== 'int') {
    throw new NotConvertible(`"${name}" has a storage reference this converter does not know`);
  }
  const storageClass = cls.ref.replace(/^torch\./, '');
  const dtype = STORAGE_DTYPES[storageClass];
  if (!dtype) throw new NotConvertible(`"${name}" is stored as ${cls.ref}, which has no safetensors dtype here`);
  return {
    name,
    storageKey: key.v,
    dtype: dtype.dtype,
    elementBytes: dtype.bytes,
    storageNumel: count(numel, `the storage size of "${name}"`),
    offset: count(offset, `the storage offset of "${name}"`),
    shape: ints(size, `the shape of "${name}"`),
    stride: ints(stride, `the stride of "${name}"`),
  };
}

/** Every tensor of a state dict (a dict or an OrderedDict of name -> tensor). */
export function stateDictTensors(root: Value): TensorLayout[] {
  const items = root.t === 'dict' || root.t === 'call' ? root.items : undefined;
  if (!items || (root.t === 'call' && (root.fn.t !== 'global' || root.fn.ref !== 'collections.OrderedDict'))) {
    throw new NotConvertible('the checkpoint is not a state dict (a mapping of names to tensors)');
  }
  return items.map(([k, v]) => {
    if (k.t !== 'str') throw new NotConvertible('the state dict has a key that is not a string');
    return tensorOf(k.v, v);
  });
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/**
 * Whether the tensor is one contiguous run of its storage (row-major strides; a dimension of size 1
 * may have any stride). Only such tensors can be written as safetensors, which has no strides.
 */
export function isContiguous(t: Pick<TensorLayout, 'shape' | 'stride'>): boolean {
  let expected = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    if (t.shape[i] !== 1 && t.stride[i] !== expected) return false;
    expected *= t.shape[i]!;
  }
  return true;
}
