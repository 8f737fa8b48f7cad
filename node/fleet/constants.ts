/** File names and modes of a fleet directory. */
export const TRUST_ROOT_FILE = 'trust-root.json'
export const OPERATOR_KEY_FILE = 'operator.key'
export const SWARM_KEY_FILE = 'swarm.key'
/** Secret files are readable by their owner only. */
export const SECRET_MODE = 0o600
/** Length of a libp2p pnet swarm key file (`/key/swarm/psk/1.0.0/\n/base16/\n` + 64 hex). */
export const SWARM_KEY_LENGTH = 95
/** Default fleet id when none is given. */
export const DEFAULT_FLEET_ID = 'default-fleet'
