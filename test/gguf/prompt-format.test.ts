/**
 * The Metharme prompt format (issue 21, item 5): the seeds' example, and a sliding window for a
 * token budget that keeps the system prompt, drops the oldest exchanges first and ends with
 * <|model|>, counted with the model's real tokenizer (the fixture's SentencePiece model).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { countWith, metharmePrompt, renderMetharme, type Turn } from '../../src/index.js';
import { readSentencePiece } from '../../src/release/sentencepiece.js';
import { SpmTokenizer } from '../../src/release/spm-tokenizer.js';
import { ROOT } from '../support/helpers.js';

const tokenizer = new SpmTokenizer(readSentencePiece(readFileSync(join(ROOT, 'fixtures', 'gguf', 'float16', 'tokenizer.model')), 'tokenizer.model'));
const count = countWith(tokenizer);
const SYSTEM = 'This is a text adventure game. Describe the scenario to the user and give him three options to pick from on each turn.';
const turns: Turn[] = [
  { role: 'user', text: 'Start!' },
  { role: 'model', text: 'You are standing in front of an old, abandoned house.' },
  { role: 'user', text: 'go inside' },
  { role: 'model', text: 'You enter the house, and a wave of unsettling energy washes over you.' },
  { role: 'user', text: 'Ask him what he wants.' },
];

describe('the Metharme prompt format', () => {
  it("renders the model card's prompts exactly", () => {
    expect(renderMetharme(SYSTEM, turns.slice(0, 1))).toBe(`<|system|>${SYSTEM}<|user|>Start!<|model|>`);
    expect(renderMetharme(SYSTEM, turns.slice(0, 3))).toBe(`<|system|>${SYSTEM}<|user|>Start!<|model|>${turns[1]!.text}<|user|>go inside<|model|>`);
  });

  it('keeps everything when it fits, counting BOS and the whole prompt with the real tokenizer', () => {
    const p = metharmePrompt({ system: SYSTEM, turns, budget: 10_000, countTokens: count });
    expect(p.dropped).toBe(0);
    expect(p.prompt).toBe(renderMetharme(SYSTEM, turns));
    expect(p.tokens).toBe(1 + tokenizer.encode(p.prompt).length);
  });

  it('drops the oldest exchanges first, keeps the system prompt, and ends with <|model|>, within the budget', () => {
    const full = count(renderMetharme(SYSTEM, turns));
    const withoutFirst = count(renderMetharme(SYSTEM, turns.slice(2)));
    const p = metharmePrompt({ system: SYSTEM, turns, budget: full - 1, countTokens: count });
    expect(p.dropped).toBe(2);
    expect(p.tokens).toBe(withoutFirst);
    expect(p.tokens).toBeLessThan(full);
    expect(p.prompt.startsWith(`<|system|>${SYSTEM}<|user|>go inside`)).toBe(true);
    expect(p.prompt.endsWith('<|user|>Ask him what he wants.<|model|>')).toBe(true);
    const last = metharmePrompt({ system: SYSTEM, turns, budget: count(renderMetharme(SYSTEM, turns.slice(4))), countTokens: count });
    expect(last.dropped).toBe(4);
  });

  it('says when the system prompt alone does not fit', () => {
    expect(() => metharmePrompt({ system: SYSTEM, turns, budget: 5, countTokens: count })).toThrow(/the system prompt alone takes \d+ tokens, more than the budget of 5/);
  });
});
