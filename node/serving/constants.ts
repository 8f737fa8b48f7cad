/** Defaults of federated serving (node/serving/). Every one can be overridden through its module's init. */

/** A peer's health report older than this many report intervals no longer makes it a candidate. */
export const FORWARD_REPORT_MAX_INTERVALS = 3
/** …but never less than this, ms (short report intervals, a busy reporter, a little clock skew). */
export const FORWARD_REPORT_MIN_AGE_MS = 30_000
/** Forwarded streams in flight at once to one peer (requester side) and from one peer (server side). */
export const FORWARD_MAX_STREAMS_PER_PEER = 4
/** Forwarded streams a node serves at once, from all peers (libp2p's maxInboundStreams too). */
export const FORWARD_MAX_INBOUND_STREAMS = 32
/** Peers tried for one request (the first, then failovers). */
export const FORWARD_MAX_ATTEMPTS = 3
/** Dialing a peer and opening the stream, ms. */
export const FORWARD_DIAL_TIMEOUT_MS = 5_000
/** Server side: reading the request frame, and answering a refused peer, ms. */
export const FORWARD_READ_TIMEOUT_MS = 5_000
/** From the request frame to the head frame (the server's queue wait and first token), ms. */
export const FORWARD_HEAD_TIMEOUT_MS = 60_000
/** Longest silence between two body frames, ms (a token every so often keeps a stream alive). */
export const FORWARD_IDLE_TIMEOUT_MS = 60_000
/** Whole forwarded request, ms (as long as a local request may run, plus slack). */
export const FORWARD_TOTAL_TIMEOUT_MS = 10 * 60_000
/** Models listed by GET /v1/models (local first, then through peers). */
export const MODELS_MAX_LISTED = 64
/** Response header naming the peer that served a forwarded request. */
export const HEADER_SERVED_BY = 'x-llmesh-served-by'
/** Response header naming the model version that served it. */
export const HEADER_SERVED_VERSION = 'x-llmesh-served-version'
/** Request header the responder sets on a forwarded request: such a request is never forwarded again. */
export const HEADER_FORWARDED = 'x-llmesh-forwarded'
