/**
 * The chunk parameters of a model lineage. Every release of a lineage must be chunked with the
 * same parameters, or it shares no chunk with its predecessors and a device fetches the whole file
 * again (delta reuse lost). So the parameters are chosen once, when the lineage's feed is new, and
 * recorded in the feed's local hypercore user data (`LINEAGE_CHUNKING_KEY`, on the publisher only;
 * devices read them from each manifest's `chunks.chunking`):
 * - a recorded lineage keeps its parameters;
 * - a feed that already holds blocks but has no record was started before lineages recorded theirs,
 *   with the chunker's defaults (`CHUNK_MIN/AVG/MAX`, 16/64/256 KiB): those are recorded and kept;
 * - a new feed gets `NEW_LINEAGE_CHUNK_*` (larger blocks: less CPU per byte on devices).
 * A caller's explicit parameters win (tests and benchmarks that need many or few blocks); they are
 * recorded only when the lineage has no record yet.
 */
import { type ChunkingOptions, type ChunkingParams, resolveChunking } from './chunker.ts'
import {
  CHUNK_AVG,
  CHUNK_MAX,
  CHUNK_MIN,
  LINEAGE_CHUNKING_KEY,
  NEW_LINEAGE_CHUNK_AVG,
  NEW_LINEAGE_CHUNK_MAX,
  NEW_LINEAGE_CHUNK_MIN,
} from './constants.ts'

/** The part of a hypercore feed the lookup uses (hypercore 11's local user data). */
export interface LineageFeed {
  readonly length: number
  getUserData(key: string): Promise<Buffer | null>
  setUserData(key: string, value: Buffer | string): Promise<void>
}

/** Parameters of lineages started before they were recorded (the chunker's defaults). */
export const LEGACY_CHUNKING: ChunkingParams = { algo: 'fastcdc', min: CHUNK_MIN, avg: CHUNK_AVG, max: CHUNK_MAX }
/** Parameters of a new lineage. */
export const NEW_LINEAGE_CHUNKING: ChunkingParams = {
  algo: 'fastcdc',
  min: NEW_LINEAGE_CHUNK_MIN,
  avg: NEW_LINEAGE_CHUNK_AVG,
  max: NEW_LINEAGE_CHUNK_MAX,
}

/** The feed's recorded parameters, or null (none recorded, or a record this version cannot read). */
export async function recordedChunking(feed: LineageFeed): Promise<ChunkingParams | null> {
  const raw = await feed.getUserData(LINEAGE_CHUNKING_KEY)
  if (raw === null) return null
  try {
    const p = JSON.parse(raw.toString()) as Partial<ChunkingParams>
    if (p.algo !== 'fastcdc') return null
    return resolveChunking({ min: p.min, avg: p.avg, max: p.max })
  } catch {
    return null
  }
}

/**
 * The parameters to chunk the lineage's next release with (see the module comment), recording the
 * lineage's parameters when it has none recorded. Call before appending to the feed.
 */
export async function lineageChunking(feed: LineageFeed, explicit?: ChunkingOptions): Promise<ChunkingParams> {
  const recorded = await recordedChunking(feed)
  const chosen =
    explicit !== undefined
      ? resolveChunking(explicit)
      : (recorded ?? (feed.length > 0 ? LEGACY_CHUNKING : NEW_LINEAGE_CHUNKING))
  if (recorded === null) {
    const own = explicit === undefined || feed.length === 0 ? chosen : LEGACY_CHUNKING
    await feed.setUserData(LINEAGE_CHUNKING_KEY, JSON.stringify(own))
  }
  return chosen
}
