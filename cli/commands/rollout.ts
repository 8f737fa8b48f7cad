/**
 * `llmesh rollout pause|resume|abort|promote <model>@<version>` and `llmesh rollout status`.
 *
 * Commands go through a node's HTTP API: without `--fleet`, the node (normally the seed) signs
 * them with the operator key it holds (`POST /rollout/commands`); with `--fleet <dir>` holding the
 * operator key, the CLI signs locally and POSTs the signed wire bytes to any node
 * (`POST /messages`), which verifies and gossips them. A command for a release the node does not
 * know is refused (`ERR_UNKNOWN_RELEASE`, non-zero exit) before anything is signed or sent.
 * `status` reads `GET /rollout`; its JSON names each release's `state` (`pilot`, `canary`, …,
 * `paused`, `promoted`, `aborted`), the releases that fail now (`errors`) and those with several
 * valid manifests (`conflicts`).
 */

import type { Command } from 'commander'
import { DEFAULT_API } from '../../node/constants.ts'
import type { ReleaseRolloutStatus } from '../../node/rollout/plan.ts'
import {
  ApiClient,
  type CommandRequest,
  type CommandResponse,
  type RolloutJson as RolloutResponse,
} from '../api-client.ts'
import { action, CliError, type OutputOptions, print, RefusedError, UsageError } from '../output.ts'

interface RolloutOptions extends OutputOptions {
  api?: string
  data?: string
  fleet?: string
  toStage?: string
  reason?: string
}

/** What `llmesh rollout status` prints of `GET /rollout` (the server's type; errors and conflicts optional). */
export type RolloutJson = Pick<RolloutResponse, 'releases'> & Partial<Pick<RolloutResponse, 'errors' | 'conflicts'>>

/** `model@version`, a malformed one a usage error (the parser loads zod: only when a ref is given). */
async function releaseRef(ref: string): Promise<{ model: string; version: string }> {
  const { parseReleaseRef } = await import('../../node/rollout/commands.ts')
  try {
    return parseReleaseRef(ref)
  } catch (err) {
    throw new UsageError((err as Error).message, 'ERR_INVALID_INPUT')
  }
}

/** Refuses a release the node knows nothing of (no manifest, not even a conflicted one). */
function ensureKnown(st: RolloutJson, model: string, version: string, url: string): void {
  const is = (x: { model: string; version: string }) => x.model === model && x.version === version
  if (st.releases.some(is) || (st.conflicts ?? []).some(is)) return
  // the same refusal as the node's own (404 ERR_UNKNOWN_RELEASE), decided from its release list
  throw new RefusedError(
    `${model}@${version} is not a release ${url} knows (see llmesh rollout status)`,
    'ERR_UNKNOWN_RELEASE',
    404,
  )
}

/** What a sent command prints: the server's answer and who signed it. */
type CommandOut = CommandResponse & { via: 'node' | 'local-key' }

async function sendCommand(act: string, ref: string, opts: RolloutOptions): Promise<void> {
  const { model, version } = await releaseRef(ref)
  const client = await ApiClient.connect(opts)
  const req: CommandRequest = { action: act, model, version, to_stage: opts.toStage, reason: opts.reason }
  let out: CommandOut
  if (opts.fleet !== undefined) {
    const { loadFleet } = await import('../../node/fleet/index.ts')
    const { signCommand } = await import('../../node/rollout/commands.ts')
    const { messageIdOfWire } = await import('../../protocols/signing/message-id.ts')
    const fleet = await loadFleet(opts.fleet)
    if (fleet.operatorSigner === undefined) {
      throw new CliError(`${opts.fleet} holds no operator key`, 'ERR_NO_OPERATOR_KEY')
    }
    ensureKnown(await client.rollout(), model, version, client.base)
    const { command, wire } = await signCommand(req, fleet.root.fleet, fleet.operatorSigner, Date.now())
    await client.postMessage(wire)
    out = { command, digest: messageIdOfWire(wire), via: 'local-key' }
  } else {
    out = { ...(await client.command(req)), via: 'node' }
  }
  print(opts, out, (o) => `${o.command.action} ${o.command.model}@${o.command.version} sent (command ${o.command.id})`)
}

/** The cohort's failed devices with their reasons, against the stage's failure budget. */
export function failedDeviceLines(r: Pick<ReleaseRolloutStatus, 'failures'>): string[] {
  const f = r.failures
  if (f === undefined || f === null || f.failed.length === 0) return []
  const over = f.failed.length > f.budget
  const lines = [`  failed devices: ${f.failed.length} of ${f.cohort} (budget ${f.budget}${over ? ', exceeded' : ''})`]
  for (const d of f.failed) lines.push(`    ${d.device}: ${d.reasons.join(', ')}`)
  return lines
}

/** The failing and conflicted releases, first: what the operator must look at. */
function problems(st: RolloutJson): string[] {
  const lines: string[] = []
  for (const c of st.conflicts ?? []) {
    const seqs = c.manifests.map((m) => `seq ${m.seq} ${m.sha256.slice(0, 12)}`).join(', ')
    lines.push(
      c.outcome === 'duplicate'
        ? `${c.model}@${c.version}  published ${c.manifests.length} times with the same file (${seqs}); the lowest seq counts`
        : c.reason === 'seq'
          ? `${c.model}@${c.version}  CONFLICTED: shares a seq with ${(c.seq_shared_with ?? []).map((v) => `${c.model}@${v}`).join(', ')} (${seqs}): two operator nodes allocated one seq; refused on every node, publish the intended file as a new, higher version`
          : `${c.model}@${c.version}  CONFLICTED: ${c.manifests.length} valid manifests for different files (${seqs}); refused on every node, publish the intended file as a new version`,
    )
  }
  for (const e of st.errors ?? []) {
    if (e.code === 'ERR_RELEASE_CONFLICT') continue
    lines.push(
      `${e.model}@${e.version}  ERROR ${e.code}: ${e.message} (${e.count}× since ${new Date(e.since).toISOString()})`,
    )
  }
  return lines
}

/** The human-readable form of `llmesh rollout status`: problems first, then each release. */
export function humanRollout(st: RolloutJson): string {
  const { releases } = st
  const lines: string[] = problems(st)
  if (releases.length === 0) return [...lines, '(no releases)'].join('\n')
  for (const r of releases) {
    lines.push(
      `${r.model}@${r.version}  ${r.state}  (stage ${r.stage} ${r.stageName}, previous ${r.previous ?? '-'})` +
        (r.downgradeFrom !== undefined ? `  DOWNGRADE from ${r.downgradeFrom} (allowed by the operator)` : ''),
    )
    if (r.prestaged !== undefined) {
      const { devices, of, missing } = r.prestaged
      lines.push(
        `  prestaged on ${devices}/${of} devices` +
          (missing.length > 0
            ? ` (missing: ${missing.map((id) => id.slice(-8)).join(', ')})`
            : ' (the seed may go offline)'),
      )
    }
    if (r.gate !== null) {
      lines.push(`  gate: ${r.gate.outcome}  reporters ${r.gate.reporters}/${r.gate.required}`)
      for (const g of r.gate.figures) {
        // a figure not met fails the stage only when the outcome is `fail`; else the stage holds and waits
        const mark = g.pass ? 'ok   ' : r.gate.outcome === 'fail' ? 'FAIL ' : 'holds'
        lines.push(`    ${mark} ${g.gate}: ${g.value ?? '-'} (threshold ${g.threshold ?? '-'})`)
      }
      for (const why of r.gate.reasons) lines.push(`    · ${why}`)
    }
    lines.push(...failedDeviceLines(r))
    for (const x of r.stillRunning ?? [])
      lines.push(`  still running it: ${x.device}${x.reason !== undefined ? ` (STUCK: ${x.reason})` : ''}`)
    for (const v of r.verdicts) {
      lines.push(
        `  verdict ${v.outcome} stage ${v.stage} by ${v.device.slice(-8)}: ${v.evidence} reports, ${v.check}${v.adopted ? ', adopted' : ''}`,
      )
    }
    for (const c of r.commands)
      lines.push(`  command ${c.action}${c.to_stage ? ` → ${c.to_stage}` : ''} (${c.id.slice(0, 8)})`)
    for (const [stage, ids] of Object.entries(r.cohorts)) {
      if (ids.length > 0) lines.push(`  cohort ${stage}: ${ids.map((id) => id.slice(-8)).join(', ')}`)
    }
  }
  return lines.join('\n')
}

/** Registers `rollout`. */
export function registerRollout(program: Command): void {
  const rollout = program.command('rollout').description('collective canary: operator commands and status')
  const common = (cmd: Command): Command =>
    cmd
      .option('--api <url>', `node API (default http://${DEFAULT_API}; the seed, or any node with --fleet)`)
      .option('--data <dir>', 'read the API address from <dir>/node.json')
      .option('--json', 'print JSON')
  for (const act of ['pause', 'resume', 'abort', 'promote'] as const) {
    const cmd = common(
      rollout
        .command(`${act} <release>`)
        .description(`${act} the rollout of <model>@<version> (signed with the operator key)`),
    )
      .option('--reason <text>', 'why (kept in the signed command)')
      .option('--fleet <dir>', 'sign locally with this fleet directory’s operator key and send through any node')
    if (act === 'promote') cmd.option('--to-stage <name>', 'stage to promote to (`full`: the last one)')
    cmd.action(action((ref: string, opts: RolloutOptions) => sendCommand(act, ref, opts)))
  }
  common(rollout.command('status [release]').description('each release’s stage, gates, verdicts and cohorts')).action(
    action(async (ref: string | undefined, opts: RolloutOptions) => {
      const wanted = ref === undefined ? undefined : await releaseRef(ref) // a usage error before any call
      const client = await ApiClient.connect(opts)
      const all = await client.rollout()
      let st: Required<RolloutJson> = {
        releases: all.releases,
        errors: all.errors ?? [],
        conflicts: all.conflicts ?? [],
      }
      if (wanted !== undefined) {
        const { model, version } = wanted
        ensureKnown(all, model, version, client.base)
        const is = (x: { model: string; version: string }) => x.model === model && x.version === version
        st = { releases: st.releases.filter(is), errors: st.errors.filter(is), conflicts: st.conflicts.filter(is) }
      }
      print(opts, st, (o) => humanRollout(o))
    }),
  )
}
