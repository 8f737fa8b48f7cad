/**
 * `llmesh rollout pause|resume|abort|promote <model>@<version>` and `llmesh rollout status`.
 *
 * Commands go through a node's HTTP API: without `--fleet`, the node (normally the seed) signs
 * them with the operator key it holds (`POST /rollout/commands`); with `--fleet <dir>` holding the
 * operator key, the CLI signs locally and POSTs the signed wire bytes to any node
 * (`POST /messages`), which verifies and gossips them. `status` reads `GET /rollout`; its JSON
 * names each release's `state` (`pilot`, `canary`, …, `paused`, `promoted`, `aborted`).
 */

import type { Command } from 'commander'
import { DEFAULT_API } from '../../node/constants.ts'
import { loadFleet } from '../../node/fleet/index.ts'
import { parseReleaseRef, signCommand } from '../../node/rollout/commands.ts'
import type { ReleaseRolloutStatus } from '../../node/rollout/plan.ts'
import { messageIdOfWire } from '../../protocols/signing/message-id.ts'
import { callApi, nodeUrl } from '../api-client.ts'
import { action, CliError, type OutputOptions, print } from '../output.ts'

interface RolloutOptions extends OutputOptions {
  api?: string
  data?: string
  fleet?: string
  toStage?: string
  reason?: string
}

interface CommandOut {
  command: { action: string; model: string; version: string; id: string; to_stage?: string }
  digest: string
  via: 'node' | 'local-key'
}

async function sendCommand(act: string, ref: string, opts: RolloutOptions): Promise<void> {
  const { model, version } = parseReleaseRef(ref)
  const url = await nodeUrl(opts)
  const req = { action: act, model, version, to_stage: opts.toStage, reason: opts.reason }
  let out: CommandOut
  if (opts.fleet !== undefined) {
    const fleet = await loadFleet(opts.fleet)
    if (fleet.operatorSigner === undefined) {
      throw new CliError(`${opts.fleet} holds no operator key`, 'ERR_NO_OPERATOR_KEY')
    }
    const { command, wire } = await signCommand(req, fleet.root.fleet, fleet.operatorSigner, Date.now())
    await callApi(`${url}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: wire,
    })
    out = { command, digest: messageIdOfWire(wire), via: 'local-key' }
  } else {
    const r = (await callApi(`${url}/rollout/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(req),
    })) as Omit<CommandOut, 'via'>
    out = { ...r, via: 'node' }
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

function human(releases: ReleaseRolloutStatus[]): string {
  if (releases.length === 0) return '(no releases)'
  const lines: string[] = []
  for (const r of releases) {
    lines.push(`${r.model}@${r.version}  ${r.state}  (stage ${r.stage} ${r.stageName}, previous ${r.previous ?? '-'})`)
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
        lines.push(`    ${g.pass ? 'ok  ' : 'FAIL'} ${g.gate}: ${g.value ?? '-'} (threshold ${g.threshold ?? '-'})`)
      }
      for (const why of r.gate.reasons) lines.push(`    · ${why}`)
    }
    lines.push(...failedDeviceLines(r))
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
      const url = await nodeUrl(opts)
      const all = ((await callApi(`${url}/rollout`)) as { releases: ReleaseRolloutStatus[] }).releases
      let releases = all
      if (ref !== undefined) {
        const { model, version } = parseReleaseRef(ref)
        releases = all.filter((r) => r.model === model && r.version === version)
        if (releases.length === 0) throw new CliError(`${ref} is not known to ${url}`, 'ERR_NOT_FOUND')
      }
      print(opts, { releases }, (o) => human(o.releases))
    }),
  )
}
