/** Building and signing operator commands (the seed, or any node given the operator key). */
import { randomBytes } from 'node:crypto'
import { InvalidInputError, LlmeshError } from '../../protocols/errors.ts'
import { CommandAction, ModelName, type OperatorCommand, SemverString } from '../../protocols/schemas/index.ts'
import { type OperatorSigner, signOperatorMessage } from '../../protocols/signing/index.ts'

/** An operator command names a release this node holds no manifest of (HTTP 404). */
export class UnknownReleaseError extends LlmeshError {
  constructor(model: string, version: string) {
    super('ERR_UNKNOWN_RELEASE', `${model}@${version} is not a release this node knows (see llmesh rollout status)`)
    this.name = 'UnknownReleaseError'
  }
}

/** This node runs no rollout controller (yet): it cannot tell which releases exist (HTTP 503). */
export class RolloutNotRunningError extends LlmeshError {
  constructor() {
    super('ERR_NOT_RUNNING', 'no rollout controller runs on this node')
    this.name = 'RolloutNotRunningError'
  }
}

/** What an operator asks for. */
export interface CommandRequest {
  action: string
  model: string
  version: string
  to_stage?: string
  reason?: string
}

/** Parses `model@version`. */
export function parseReleaseRef(text: string): { model: string; version: string } {
  const at = text.lastIndexOf('@')
  const model = text.slice(0, at)
  const version = text.slice(at + 1)
  if (at <= 0 || !ModelName.safeParse(model).success || !SemverString.safeParse(version).success) {
    throw new InvalidInputError(`expected <model>@<version>, got ${JSON.stringify(text)}`)
  }
  return { model, version }
}

/** Builds an OperatorCommand (fresh id, issued now). Throws InvalidInputError on bad fields. */
export function buildCommand(req: CommandRequest, fleet: string, now: number): OperatorCommand {
  const action = CommandAction.safeParse(req.action)
  if (!action.success) throw new InvalidInputError(`action must be one of pause, resume, abort, promote`)
  parseReleaseRef(`${req.model}@${req.version}`)
  const cmd: OperatorCommand = {
    type: 'OperatorCommand',
    v: 1,
    fleet,
    action: action.data,
    model: req.model,
    version: req.version,
    id: randomBytes(16).toString('hex'),
    issued_at: now,
  }
  if (req.to_stage !== undefined) {
    if (action.data !== 'promote') throw new InvalidInputError('--to-stage only goes with promote')
    cmd.to_stage = req.to_stage
  }
  if (req.reason !== undefined) cmd.reason = req.reason.slice(0, 512)
  return cmd
}

/** Builds and signs a command: the wire bytes to publish. */
export async function signCommand(
  req: CommandRequest,
  fleet: string,
  signer: OperatorSigner,
  now: number,
): Promise<{ command: OperatorCommand; wire: Uint8Array }> {
  const command = buildCommand(req, fleet, now)
  return { command, wire: await signOperatorMessage(command, signer) }
}
