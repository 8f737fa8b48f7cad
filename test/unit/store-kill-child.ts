/**
 * Child process of the message store's kill -9 test. argv[2] is the data directory. Loads the
 * store, prints `ready`, then appends health reports as fast as it can (16 puts in flight, so
 * group commits batch them) and prints `ack <id>` once each put has resolved (its record is
 * durable), until it is killed.
 */
import { silentLogger } from '../../node/logger.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import { report, reporter } from './store-fixtures.ts'

const dir = process.argv[2]
const store = new MessageStore({ logger: silentLogger() }, { dataDir: dir })
await store.load()
const r = await reporter()
process.stdout.write('ready\n')
let seq = 0
async function worker(): Promise<void> {
  for (;;) {
    const m = await report(r, seq++)
    await store.put(m.verified, m.bytes)
    process.stdout.write(`ack ${m.verified.digest}\n`)
  }
}
await Promise.all(Array.from({ length: 16 }, () => worker()))
