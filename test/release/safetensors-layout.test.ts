/** A safetensors header held to its file as the safetensors library holds it (its Metadata::validate). */
import { describe, expect, it } from 'vitest';
import { safetensorsLayout } from '../../src/release/safetensors-layout.js';

const header = (doc: unknown) => JSON.stringify(doc);
const t = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });

describe('safetensorsLayout', () => {
  it('gives the tensors of a header that covers its data section exactly, in any order of the entries', () => {
    const doc = { __metadata__: { format: 'pt' }, b: t('F32', [2], 4, 12), a: t('F16', [2], 0, 4), empty: t('BF16', [0, 3], 12, 12), nib: t('F4', [2], 12, 13) };
    expect(safetensorsLayout(header(doc), 13)).toEqual([
      { name: 'b', dtype: 'F32', shape: [2], begin: 4, end: 12 },
      { name: 'a', dtype: 'F16', shape: [2], begin: 0, end: 4 },
      { name: 'empty', dtype: 'BF16', shape: [0, 3], begin: 12, end: 12 },
      { name: 'nib', dtype: 'F4', shape: [2], begin: 12, end: 13 },
    ]);
    expect(safetensorsLayout(header({ __metadata__: null }), 0)).toEqual([]);
  });

  it('refuses what the library refuses: holes, overlaps, bytes left over, a size that is not the shape, unknown dtypes', () => {
    const refused = (doc: unknown, data: number) => () => safetensorsLayout(typeof doc === 'string' ? doc : header(doc), data);
    expect(refused({ a: t('F16', [2], 0, 4), b: t('F16', [2], 0, 4) }, 4)).toThrow(/two tensors overlap at byte 0/);
    expect(refused({ a: t('F16', [2], 0, 4), b: t('F16', [2], 6, 10) }, 10)).toThrow(/its data has a hole at byte 4/);
    expect(refused({ a: t('F16', [2], 0, 4) }, 8)).toThrow(/its tensors cover 4 bytes of a 8-byte data section/);
    expect(refused({ a: t('F16', [3], 0, 4) }, 4)).toThrow(/tensor "a" has 4 bytes for a shape of 3 elements/);
    expect(refused({ a: t('F16', [2], 4, 0) }, 4)).toThrow(/tensor "a" has -4 bytes/);
    expect(refused({ a: t('F4', [3], 0, 2) }, 2)).toThrow(/tensor "a" does not end on a byte/);
    expect(refused({ a: t('float16', [2], 0, 4) }, 4)).toThrow(/tensor "a" has no known dtype/);
    expect(refused({ a: t('F16', [2.5], 0, 5) }, 5)).toThrow(/tensor "a" has a shape that is not a list of non-negative integers/);
    expect(refused({ a: { dtype: 'F16', shape: [2], data_offsets: [0, 4, 8] } }, 4)).toThrow(/tensor "a" has bad data offsets/);
    expect(refused({ a: t('F16', [2 ** 40, 2 ** 20], 0, 4) }, 4)).toThrow(/tensor "a" has a shape too large to hold/);
    expect(refused({ a: null }, 0)).toThrow(/tensor "a" has no known dtype/);
    expect(refused({ __metadata__: { n: 1 } }, 0)).toThrow(/its __metadata__ is not a map of strings/);
    expect(refused(' {}', 0)).toThrow(/its header does not start with \{/);
    expect(refused('{"a":', 0)).toThrow(/its header is not JSON/);
    expect(refused('{} []', 0)).toThrow(/its header is not JSON/);
    expect(refused('[]', 0)).toThrow(/does not start with \{/);
    // serde_json reads JSON strings into Rust strings: a \u escape of a lone surrogate is an error there.
    expect(refused(`{"a\\ud800":${JSON.stringify(t('F16', [2], 0, 4))}}`, 4)).toThrow(/not valid Unicode \(a lone surrogate\): "a\\ud800"/);
    expect(refused('{"__metadata__":{"k":"\\udc00"}}', 0)).toThrow(/not valid Unicode/);
    expect(safetensorsLayout(`{"a\\ud83d\\ude00":${JSON.stringify(t('F16', [2], 0, 4))}}`, 4).map((x) => x.name)).toEqual(['a😀']);
  });
});
