import * as z from 'zod'
import { DEVICE_TYPES, OPERATOR_TYPES, PeerIdString } from './schemas/index.ts'

/**
 * The one wire form of every signed message, on gossip and in anti-entropy alike, encoded as
 * RFC 8785 canonical JSON, with no field beyond those below (strict objects). A message is named by
 * its id (`messageId`: sha256 of signer, payload type and payload), not by these bytes, so two
 * envelopes of one message are one message (anti-entropy digests, verdict evidence).
 *
 * - `operator`: a Sigstore bundle v0.3 whose DSSE envelope carries the message (releases as an
 *   in-toto statement, everything else as canonical JSON), signed with an operator key.
 * - `device`: canonical JSON payload (base64) and an Ed25519 signature by the device's libp2p key
 *   over DSSE's pre-authentication encoding of (payload type, payload).
 */
export const WireEnvelope = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('operator'),
    type: z.enum(OPERATOR_TYPES),
    bundle: z.record(z.string(), z.unknown()),
  }),
  z.strictObject({
    kind: z.literal('device'),
    type: z.enum(DEVICE_TYPES),
    signer: PeerIdString,
    payload: z.string().max(8 * 1024 * 1024),
    sig: z.string().max(256),
  }),
])
export type WireEnvelope = z.infer<typeof WireEnvelope>
