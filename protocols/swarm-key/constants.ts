/** Defaults and bounds of join-secret rotation. */

/** Longest a rotation may announce its switch ahead of its issue time (a device offline longer needs a new key file). */
export const SWARM_KEY_MAX_SWITCH_DELAY_MS = 7 * 24 * 3600 * 1000
/** Default delay between publishing a rotation and switching: time for gossip and anti-entropy to reach every device. */
export const SWARM_KEY_DEFAULT_SWITCH_DELAY_MS = 30_000
/** Header of a libp2p pnet swarm key file; 64 hex digits of the key follow. */
export const SWARM_KEY_FILE_HEADER = '/key/swarm/psk/1.0.0/\n/base16/\n'
