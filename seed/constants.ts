/** Defaults of release publishing on the seed. */

/** A release manifest expires this long after it is cut, ms (90 days). */
export const RELEASE_TTL_MS = 90 * 24 * 60 * 60 * 1000
/** Runtime range written when the publisher gives none (node-llama-cpp 3.x from 3.21). */
export const DEFAULT_RUNTIME_RANGE = '>=3.21.0 <4'
/** Uploads of model files to the seed's API land here (under the seed's data dir). */
export const UPLOAD_DIR = 'uploads'
/** Largest model file the HTTP API accepts, bytes. */
export const MAX_UPLOAD_BYTES = 64 * 1024 * 1024 * 1024
/** Published manifests (wire form) are kept here, one file per model@version. */
export const RELEASES_DIR = 'releases'
/** The operator's release seq counter, in the fleet directory beside operator.key (seed/seq-authority.ts). */
export const SEQ_FILE = 'release-seq.json'
/** Largest seq counter file read, bytes (it holds one number per model). */
export const MAX_SEQ_FILE_BYTES = 1024 * 1024
/** Distinct error codes `llmesh_publish_refusals_total` keeps as labels (more go to `ERR_OTHER`). */
export const MAX_REFUSAL_CODES = 32
/** Most agent packages staged for a multi-architecture release at once (the oldest is dropped). */
export const MAX_STAGED_AGENT_PACKAGES = 16
/** How long a staged agent package waits for the release that names it, ms. */
export const STAGED_AGENT_PACKAGE_TTL_MS = 60 * 60 * 1000
