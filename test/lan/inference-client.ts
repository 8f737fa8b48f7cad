/**
 * Run inside a namespace of the LAN bed (`ip netns exec <ns> node test/lan/inference-client.ts
 * <baseURL> <marker>`): the official `openai` client lists the models, then asks for completions
 * and chat completions, each not streamed and streamed, with prompts carrying `marker`. Prints one
 * JSON object with what came back (texts, usage, chunk counts, finish reasons) on stdout.
 */
import OpenAI from 'openai'

const [baseURL, marker] = process.argv.slice(2)
if (baseURL === undefined || marker === undefined) throw new Error('usage: inference-client.ts <baseURL> <marker>')
const client = new OpenAI({ baseURL, apiKey: 'lan-test', maxRetries: 0, timeout: 60_000 })

const models = (await client.models.list()).data.map((m) => m.id)
const c = await client.completions.create({ model: 'tiny', prompt: `${marker} completion`, max_tokens: 16 })
const cs = await client.completions.create({
  model: 'tiny',
  prompt: `${marker} completion`,
  max_tokens: 16,
  stream: true,
  stream_options: { include_usage: true },
})
let csText = ''
let csChunks = 0
let csUsage: unknown = null
let csFinish: string | null = null
for await (const x of cs) {
  csChunks++
  csText += x.choices[0]?.text ?? ''
  csFinish = x.choices[0]?.finish_reason ?? csFinish
  if (x.usage) csUsage = x.usage
}
const messages = [{ role: 'user' as const, content: `${marker} chat` }]
const ch = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 16 })
const chs = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 16, stream: true })
let chsText = ''
let chsChunks = 0
for await (const x of chs) {
  chsChunks++
  chsText += x.choices[0]?.delta.content ?? ''
}
let badRequest: { status?: number; type?: string } = {}
try {
  await client.completions.create({ model: 'no-such-model', prompt: 'x', max_tokens: 2 })
} catch (err) {
  const e = err as { status?: number; type?: string }
  badRequest = { status: e.status, type: e.type }
}
console.log(
  JSON.stringify({
    models,
    completion: { text: c.choices[0].text, usage: c.usage, model: c.model, finish: c.choices[0].finish_reason },
    completionStream: { text: csText, chunks: csChunks, usage: csUsage, finish: csFinish },
    chat: { text: ch.choices[0].message.content, role: ch.choices[0].message.role, usage: ch.usage },
    chatStream: { text: chsText, chunks: chsChunks },
    badRequest,
  }),
)
