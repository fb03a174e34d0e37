import { describe, expect, it } from 'vitest';
import { unsafeNameReason } from '../../src/file-names.js';

describe('unsafeNameReason: one plain file name on every platform', () => {
  it.each([
    ['config.json'],
    ['pytorch_model-00001-of-00003.bin'],
    ['tokenizer.model'],
    ['CONSOLE.txt'],
    ['nullable.json'],
    ['com10'],
    ['.gitattributes'],
  ])('%s is a plain name', (name) => {
    expect(unsafeNameReason(name)).toBeUndefined();
  });

  it.each([
    ['', /empty/],
    ['..', /empty/],
    ['a/b', /path separator/],
    ['a\\b', /path separator/],
    ['c:x', /":"/],
    ['a\u0001b', /control character/],
    ['a?b', /Windows refuses/],
    ['name.', /ends with/],
    ['name ', /ends with/],
    ['NUL', /device name/],
    ['aux.json', /device name/],
    ['com¹.bin', /device name/],
    ['LPT9.txt', /device name/],
    ['CONIN$', /device name/],
    ['conout$.json', /device name/],
    ['x'.repeat(256), /longer than 255 bytes/],
    ['é'.repeat(128), /longer than 255 bytes/],
  ])('%j is refused', (name, why) => {
    expect(unsafeNameReason(name)).toMatch(why);
  });
});
