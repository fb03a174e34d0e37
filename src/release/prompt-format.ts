/**
 * The Metharme prompt format, from the model cards (shared/seeds; gguf.md, section 5): three roles,
 * `<|system|>`, `<|user|>` and `<|model|>`, chained with no separator, the reply following the last
 * `<|model|>`. As a Jinja chat template (what llama.cpp's server, node-llama-cpp and transformers
 * render) it adds no BOS: the runners add it through add_bos_token.
 */

/** Where transformers reads a model's chat template from, beside its weights. */
export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

export const METHARME_CHAT_TEMPLATE =
  "{%- for message in messages -%}{%- if message['role'] == 'system' -%}{{ '<|system|>' + message['content'] }}{%- elif message['role'] == 'user' -%}{{ '<|user|>' + message['content'] }}{%- elif message['role'] == 'assistant' -%}{{ '<|model|>' + message['content'] }}{%- endif -%}{%- endfor -%}{%- if add_generation_prompt -%}{{ '<|model|>' }}{%- endif -%}";

export interface Turn {
  role: 'user' | 'model';
  text: string;
}

export interface PromptRequest {
  /** Kept at the start whatever the budget (the seeds: "keep the system prompt fixed"). */
  system?: string;
  /** The conversation, oldest first; the prompt ends with `<|model|>` for the reply. */
  turns: readonly Turn[];
  /** Tokens the prompt may take (the context left for it). */
  budget: number;
  /** Tokens of a whole prompt as the model counts them, BOS included (see countWith). */
  countTokens: (prompt: string) => number;
}

export interface Prompt {
  prompt: string;
  tokens: number;
  /** Turns left out from the start to fit the budget. */
  dropped: number;
}

/** A prompt in the Metharme format from the turns kept. */
export function renderMetharme(system: string | undefined, turns: readonly Turn[]): string {
  const body = turns.map((t) => `${t.role === 'user' ? '<|user|>' : '<|model|>'}${t.text}`).join('');
  return `${system === undefined ? '' : `<|system|>${system}`}${body}<|model|>`;
}

/**
 * The prompt the seeds advise for a token budget: a sliding window over the user and model turns,
 * the system prompt fixed at the start, the oldest exchanges dropped first (a user turn with the
 * model's reply to it), ending with `<|model|>`. The whole prompt is counted each time, as the
 * tokenizer joins pieces across turn boundaries.
 */
export function metharmePrompt(request: PromptRequest): Prompt {
  let start = 0;
  for (;;) {
    const prompt = renderMetharme(request.system, request.turns.slice(start));
    const tokens = request.countTokens(prompt);
    if (tokens <= request.budget) return { prompt, tokens, dropped: start };
    if (start >= request.turns.length) {
      throw new RangeError(`the system prompt alone takes ${tokens} tokens, more than the budget of ${request.budget}`);
    }
    // A whole exchange at a time: a reply is never kept without what it answered.
    start += request.turns[start]!.role === 'user' && request.turns[start + 1]?.role === 'model' ? 2 : 1;
  }
}

/** A token counter for metharmePrompt from a tokenizer: BOS plus the prompt's tokens. */
export function countWith(tokenizer: { encode(text: string): number[] }): (prompt: string) => number {
  return (prompt) => 1 + tokenizer.encode(prompt).length;
}
