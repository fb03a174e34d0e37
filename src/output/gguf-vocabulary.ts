/**
 * A GGUF's vocabulary as llama.cpp's convert_hf_to_gguf fills it (_create_vocab_sentencepiece,
 * shared/reference/gguf.md section 3): the pieces of tokenizer.model, [PADn] up to vocab_size, then
 * the tokens a model adds, from added_tokens.json and then tokenizer_config.json's
 * added_tokens_decoder, read as Python reads them there.
 */
import { InputError } from '../errors.js';
import { PIECE_TYPE, type PieceTable } from '../release/sentencepiece.js';
import type { PackedStrings } from './gguf-format.js';

export interface Vocabulary {
  count: number;
  tokens: PackedStrings;
  scores: Float32Array;
  types: Int32Array;
  /** The ids whose text is not a piece's (added tokens and [PADn]), ascending, each once. */
  made: number[];
}

/** A token a model adds over its pieces; a later one of the same id replaces an earlier one, as in convert. */
export interface AddedToken {
  id: number;
  text: string;
  score: number;
  type: number;
  /** The file that gave it. */
  file: string;
}

/** Tokens convert treats as control tokens whatever the model says (does_token_look_special). */
const LOOK_SPECIAL = new Set(['<pad>', '<mask>', '<2mass>', '[@BOS@]']);

function looksSpecial(text: string): boolean {
  return (
    LOOK_SPECIAL.has(text) ||
    (text.startsWith('<|') && text.endsWith('|>')) ||
    (text.startsWith('<｜') && text.endsWith('｜>')) ||
    (text.startsWith('<unused') && text.endsWith('>'))
  );
}

/** Python's truth of a JSON value, as `token_data.get("special")` is tested. */
function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v && typeof v === 'object') return Object.keys(v).length > 0;
  return Boolean(v);
}

/** A key as Python's int() reads it (sign, spaces, digit groups joined by _); undefined for none. */
function pythonInt(key: string): number | undefined {
  if (!/^\s*[+-]?\d+(?:_\d+)*\s*$/.test(key)) return undefined;
  const n = Number(key.trim().replace(/_/g, ''));
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A text Python cannot write as UTF-8 (a lone surrogate, from a \ud800 escape): convert stops there, where a Buffer would write U+FFFD. */
const LONE_SURROGATE = /\p{Cs}/u;

function refuse(file: string, message: string): never {
  throw new InputError(message, { file, hint: "use the model's own file" });
}

/** added_tokens.json: {text: id}, each user-defined with score -1000. */
export function addedTokensJson(json: Record<string, unknown>, file: string): AddedToken[] {
  const tokens: AddedToken[] = [];
  const seen = new Set<number>();
  for (const [text, id] of Object.entries(json)) {
    // convert compares the id with vocab_size: anything but a whole number stops it.
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) refuse(file, `gives ${JSON.stringify(text)} the id ${JSON.stringify(id)}, which is no token id`);
    // Which text wins would depend on the keys' order, which JSON objects do not keep alike in Python and here.
    if (seen.has(id)) refuse(file, `gives token ${id} two texts`);
    if (LONE_SURROGATE.test(text)) refuse(file, `gives token ${id} a text that is not Unicode (a lone surrogate)`);
    seen.add(id);
    tokens.push({ id, text, score: -1000, type: PIECE_TYPE.USER_DEFINED, file });
  }
  return tokens;
}

/**
 * tokenizer_config.json's added_tokens_decoder: {"id": {"content": text, "special": bool, ...}};
 * special ones, and those convert thinks look special, are control tokens; the others user-defined,
 * with SentencePiece's space mark (U+2581) read as a space. Score -1000 either way.
 */
export function addedTokensDecoder(config: Record<string, unknown>, file: string): AddedToken[] {
  const decoder = config.added_tokens_decoder;
  if (decoder === undefined) return [];
  if (!decoder || typeof decoder !== 'object' || Array.isArray(decoder)) refuse(file, 'has an "added_tokens_decoder" that is not an object');
  const tokens: AddedToken[] = [];
  const seen = new Set<number>();
  for (const [key, data] of Object.entries(decoder)) {
    const id = pythonInt(key);
    if (id === undefined || id < 0) refuse(file, `has an added_tokens_decoder key ${JSON.stringify(key)}, which is no token id`);
    if (seen.has(id)) refuse(file, `names token ${id} twice in added_tokens_decoder`);
    seen.add(id);
    const content = data && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>).content : undefined;
    if (typeof content !== 'string') refuse(file, `has no text ("content") for added token ${id}`);
    if (LONE_SURROGATE.test(content)) refuse(file, `gives added token ${id} a text that is not Unicode (a lone surrogate)`);
    const control = truthy((data as Record<string, unknown>).special) || looksSpecial(content);
    tokens.push({ id, text: control ? content : content.replaceAll('\u2581', ' '), score: -1000, type: control ? PIECE_TYPE.CONTROL : PIECE_TYPE.USER_DEFINED, file });
  }
  return tokens;
}

/**
 * Tokens, scores and types for `vocab` ids: the pieces, [PADn] with score -10000 past them, then
 * every added token below vocab_size in order, a piece's id included (convert replaces it). The
 * pieces' bytes stay where tokenizer.model holds them; a token's bytes copied into a table of their
 * own cost a GGUF's start 7 ms, run once and cold.
 */
export function vocabulary(pieces: PieceTable, added: readonly AddedToken[], vocab: number): Vocabulary {
  const count = Math.max(vocab, pieces.count);
  const scores = new Float32Array(count);
  const types = new Int32Array(count);
  const starts = new Uint32Array(count);
  const ends = new Uint32Array(count);
  scores.set(pieces.scores);
  starts.set(pieces.starts);
  ends.set(pieces.ends);
  // convert's loop has no user-defined case: those pieces go in as normal.
  for (let id = 0; id < pieces.count; id++) types[id] = pieces.types[id] === PIECE_TYPE.USER_DEFINED ? PIECE_TYPE.NORMAL : pieces.types[id]!;
  const extra: Buffer[] = [];
  let at = pieces.text.length;
  const made: number[] = [];
  const isMade = new Uint8Array(count);
  const make = (id: number, text: string, score: number, type: number) => {
    const token = Buffer.from(text, 'utf8');
    extra.push(token);
    starts[id] = at;
    ends[id] = at += token.length;
    scores[id] = score;
    types[id] = type;
    if (!isMade[id]) made.push(id);
    isMade[id] = 1;
  };
  const kept = added.filter((t) => t.id < count);
  const covered = new Set(kept.map((t) => t.id));
  for (let id = pieces.count; id < count; id++) if (!covered.has(id)) make(id, `[PAD${id}]`, -10000, PIECE_TYPE.UNUSED);
  for (const t of kept) make(t.id, t.text, t.score, t.type);
  made.sort((a, b) => a - b);
  const bytes = extra.length > 0 ? Buffer.concat([pieces.text, ...extra]) : pieces.text;
  return { count, tokens: { bytes, starts, ends }, scores, types, made };
}

/**
 * Two tokens of `v` with one text, or undefined: llama.cpp refuses a GGUF that holds a token twice
 * (it asserts as it loads). The pieces were told apart when tokenizer.model was read; the tokens
 * made for the vocabulary (added tokens, [PADn]) are held to each other and to the pieces left,
 * whose texts are made only where their lengths match one of those.
 */
export function repeatedToken(v: Vocabulary): { id: number; other: number; text: string } | undefined {
  if (v.made.length === 0) return undefined;
  const { bytes, starts, ends } = v.tokens;
  const text = (id: number) => Buffer.from(bytes.buffer, bytes.byteOffset + starts[id]!, ends[id]! - starts[id]!).toString('utf8');
  const made = new Map<string, number>();
  const lengths = new Set<number>();
  for (const id of v.made) {
    const t = text(id);
    const other = made.get(t);
    if (other !== undefined) return { id, other, text: t };
    made.set(t, id);
    lengths.add(ends[id]! - starts[id]!);
  }
  const isMade = new Set(v.made);
  for (let id = 0; id < v.count; id++) {
    if (isMade.has(id) || !lengths.has(ends[id]! - starts[id]!)) continue;
    const t = text(id);
    const other = made.get(t);
    if (other !== undefined) return { id: other, other: id, text: t };
  }
  return undefined;
}
