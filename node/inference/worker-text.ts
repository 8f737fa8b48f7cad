/**
 * What goes into and comes out of one generation in the worker, without llama.cpp state: the chat
 * history a request becomes, the batching of text chunks into IPC messages, the finish reason and
 * the token counts. Used by the worker process (worker.ts) only.
 */
import type { ChatHistoryItem } from 'node-llama-cpp'
import type { FinishReason, GenerateSpec } from './ipc.ts'

/** The chat history of a chat request: its messages, then the model's turn to answer. */
export function toHistory(spec: GenerateSpec): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = []
  for (const m of spec.messages ?? []) {
    if (m.role === 'system') history.push({ type: 'system', text: m.content })
    else if (m.role === 'user') history.push({ type: 'user', text: m.content })
    else history.push({ type: 'model', response: [m.content] })
  }
  history.push({ type: 'model', response: [] })
  return history
}

/**
 * Coalesces text chunks produced in the same turn of the event loop into one IPC message: at
 * hundreds of tokens/s a message per token costs more than the generation itself. The first
 * chunk still goes out on the next tick, so time to first token is unchanged.
 */
export class TextBatcher {
  private readonly sink: (text: string) => void
  private pending: string[] = []
  private scheduled = false
  constructor(sink: (text: string) => void) {
    this.sink = sink
  }
  push(text: string): void {
    this.pending.push(text)
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => this.flush())
  }
  flush(): void {
    this.scheduled = false
    if (this.pending.length === 0) return
    this.sink(this.pending.join(''))
    this.pending = []
  }
}

/** The finish reason of node-llama-cpp's stop reason. */
export function finishReasonOf(stopReason: string): FinishReason {
  return stopReason === 'maxTokens' ? 'length' : stopReason === 'abort' ? 'abort' : 'stop'
}

/**
 * Token counts from the sequence's meter. llama.cpp decodes count as "output" when their logits
 * are read: the last prompt token and every generated token fed back; the rest of the prompt is
 * "input". The last sampled token is not fed back when generation stops at maxTokens. (Text
 * chunks are no measure: byte tokens of an unfinished UTF-8 character yield none.)
 */
export function countTokens(
  input: number,
  output: number,
  finish: FinishReason,
  maxTokens: number,
): { tokensIn: number; tokensOut: number } {
  if (output === 0) return { tokensIn: input, tokensOut: 0 }
  const sampled = output - 1 + (finish === 'length' ? 1 : 0)
  return { tokensIn: input + 1, tokensOut: Math.min(maxTokens, sampled) }
}
