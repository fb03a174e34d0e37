/**
 * LLaMA's tokenizer from its tokenizer.model, as llama.cpp runs it (its SPM tokenizer, which agrees
 * with SentencePiece's BPE): spaces become "▁", one is put in front, the text is split into
 * characters, and the adjacent pair whose joined text is the piece with the highest score is joined
 * again and again (the leftmost on ties); a piece not in the vocabulary falls back to its bytes
 * (<0xNN>). Role markers such as <|user|> are plain text to it, as they are to LLaMA-1's vocabulary.
 */
import { PIECE_TYPE, type Piece } from './sentencepiece.js';

interface Symbol {
  text: string;
  prev: number;
  next: number;
}

export class SpmTokenizer {
  private readonly ids = new Map<string, number>();
  private readonly bytes = new Map<number, number>();

  constructor(private readonly pieces: readonly Piece[]) {
    pieces.forEach((p, id) => {
      if (p.type === PIECE_TYPE.BYTE) {
        const m = /^<0x([0-9A-F]{2})>$/.exec(p.piece);
        if (m) this.bytes.set(parseInt(m[1]!, 16), id);
      } else if (p.type === PIECE_TYPE.NORMAL || p.type === PIECE_TYPE.USER_DEFINED) {
        this.ids.set(p.piece, id);
      }
    });
  }

  /** Token ids of `text`, without BOS (as llama.cpp's tokenize with add_special false). */
  encode(text: string): number[] {
    if (text.length === 0) return [];
    const chars = [...`▁${text.replaceAll(' ', '▁')}`];
    const symbols: Symbol[] = chars.map((text, i) => ({ text, prev: i - 1, next: i + 1 < chars.length ? i + 1 : -1 }));
    // A pair is joined while some adjacent pair is a piece: the best score first, the leftmost on ties.
    for (;;) {
      let best = -1;
      let bestScore = -Infinity;
      for (let i = 0; i !== -1 && i < symbols.length; i = symbols[i]!.next) {
        const s = symbols[i]!;
        if (s.next === -1) break;
        const id = this.ids.get(s.text + symbols[s.next]!.text);
        if (id === undefined) continue;
        const score = this.pieces[id]!.score;
        if (score > bestScore) {
          bestScore = score;
          best = i;
        }
      }
      if (best === -1) break;
      const left = symbols[best]!;
      const right = symbols[left.next]!;
      left.text += right.text;
      left.next = right.next;
      if (right.next !== -1) symbols[right.next]!.prev = best;
      right.text = '';
    }
    const out: number[] = [];
    for (let i = 0; i !== -1; i = symbols[i]!.next) {
      const s = symbols[i]!.text;
      const id = this.ids.get(s);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      for (const byte of Buffer.from(s, 'utf8')) {
        const b = this.bytes.get(byte);
        // No byte piece: the unknown token, as SentencePiece gives.
        out.push(b ?? 0);
      }
    }
    return out;
  }
}
