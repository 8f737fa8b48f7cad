/**
 * A release's rollout state as a join-semilattice.
 *
 * How it works: the state is the set of verified facts about one release — operator commands
 * (by id) and verdicts whose evidence was checked (by digest). Joining two states is set union
 * (see merge.ts), so it is commutative, associative and idempotent. Everything else is *derived*
 * from the set by `deriveView`, which replays the facts in a total order (time, kind, id); the same
 * set therefore gives the same view on every node, whatever order the messages arrived in:
 * - `abort` (command, or adopted abort verdict) absorbs everything.
 * - `pause`/`resume` form a last-writer-wins register ordered by (issued_at, id): promotion is
 *   blocked from a pause until a later resume. A promote verdict decided while paused is ignored
 *   (nodes re-issue one after the resume if the gates still pass).
 * - A promote verdict for stage k is adopted when the stage had reached k at its decision time
 *   and its window started no earlier than stage k did; it moves the stage to k+1 (never back).
 * - An operator `promote` moves to `to_stage` (by name; `full` is the last stage) or to the next
 *   stage, and is not blocked by a pause (the operator's explicit order).
 * - Stage k+1 starts at the earliest decision that reached it; stage 0 starts at `releasedAt`.
 * The stage only grows as facts arrive, with one exception: a pause that arrives late but was
 * issued before an already adopted promote verdict cancels that verdict (pause wins the race).
 */
import { canonicalJson } from '../encoding.ts'
import type { CommandAction, OperatorCommand, Verdict } from '../schemas/rollout.ts'

/** An operator command as the state keeps it. */
export interface CommandFact {
  id: string
  action: CommandAction
  issued_at: number
  to_stage?: string
}

/** A verified verdict as the state keeps it. */
export interface VerdictFact {
  digest: string
  device: string
  stage: number
  outcome: 'promote' | 'abort'
  decided_at: number
  window_start: number
}

/** The facts known about one release. Treat as immutable. */
export interface RolloutState {
  /** `model@version`. */
  release: string
  /** Stage names of the release's policy, in order. */
  stages: readonly string[]
  /** Start of stage 0 (the manifest's `created_at`). */
  releasedAt: number
  commands: Readonly<Record<string, CommandFact>>
  verdicts: Readonly<Record<string, VerdictFact>>
}

/** The rollout phase. */
export type RolloutPhase = 'rolling' | 'paused' | 'promoted' | 'aborted'

/** What the facts mean now. */
export interface RolloutView {
  phase: RolloutPhase
  /** Index of the current stage. */
  stage: number
  /** Start time of every stage reached so far (index = stage). */
  stageStartedAt: number[]
  paused: boolean
  aborted: boolean
  /** What aborted it: `command:<id>` or `verdict:<digest>`. */
  abortedBy?: string
  /** Digests of verdicts that took effect. */
  adopted: string[]
}

/** A new, empty state of a release. */
export function newRolloutState(release: string, stages: readonly string[], releasedAt: number): RolloutState {
  return { release, stages: [...stages], releasedAt, commands: {}, verdicts: {} }
}

/** Adds a (verified) operator command for this release. Pure. */
export function addCommand(state: RolloutState, cmd: OperatorCommand | CommandFact): RolloutState {
  const fact: CommandFact = { id: cmd.id, action: cmd.action, issued_at: cmd.issued_at }
  if (cmd.to_stage !== undefined) fact.to_stage = cmd.to_stage
  const had = state.commands[cmd.id]
  // Same rule as merge(): of two contents under one id, the smaller canonical JSON wins.
  if (had && canonicalJson(had) <= canonicalJson(fact)) return state
  return { ...state, commands: { ...state.commands, [cmd.id]: fact } }
}

/** The fact of a verdict. */
export function verdictFact(v: Verdict, digest: string): VerdictFact {
  return {
    digest,
    device: v.device,
    stage: v.stage,
    outcome: v.outcome,
    decided_at: v.decided_at,
    window_start: v.window.start,
  }
}

/** Adds a verdict whose evidence was checked (see checkVerdict). Pure. */
export function addVerdict(state: RolloutState, fact: VerdictFact): RolloutState {
  if (state.verdicts[fact.digest]) return state
  return { ...state, verdicts: { ...state.verdicts, [fact.digest]: fact } }
}

type Event = { t: number; rank: number; key: string; cmd?: CommandFact; verdict?: VerdictFact }
const RANK: Record<string, number> = { abort: 0, pause: 1, resume: 1, promote: 2, verdict: 3 }

/** Derives the view from the facts. Deterministic: depends only on the set of facts. */
export function deriveView(state: RolloutState): RolloutView {
  const last = state.stages.length - 1
  const events: Event[] = [
    ...Object.values(state.commands).map((c) => ({ t: c.issued_at, rank: RANK[c.action], key: c.id, cmd: c })),
    ...Object.values(state.verdicts).map((v) => ({ t: v.decided_at, rank: RANK.verdict, key: v.digest, verdict: v })),
  ]
  events.sort((a, b) => a.t - b.t || a.rank - b.rank || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  let stage = 0
  const started: number[] = [state.releasedAt]
  let paused = false
  let abortedBy: string | undefined
  const adopted: string[] = []
  const reach = (target: number, t: number) => {
    const to = Math.min(Math.max(target, 0), last)
    for (let k = stage + 1; k <= to; k++) started[k] = Math.max(t, started[k - 1])
    if (to > stage) stage = to
  }
  for (const e of events) {
    if (abortedBy) break
    if (e.cmd) {
      const c = e.cmd
      if (c.action === 'abort') abortedBy = `command:${c.id}`
      else if (c.action === 'pause') paused = true
      else if (c.action === 'resume') paused = false
      else if (c.action === 'promote') {
        const named = c.to_stage === 'full' ? last : c.to_stage ? state.stages.indexOf(c.to_stage) : stage + 1
        if (named >= 0) reach(named, c.issued_at)
      }
      continue
    }
    const v = e.verdict!
    if (v.stage > stage || v.stage > last || v.window_start < started[v.stage]) continue
    if (v.outcome === 'abort') {
      abortedBy = `verdict:${v.digest}`
      adopted.push(v.digest)
    } else if (!paused && v.stage < last) {
      if (v.stage + 1 > stage) reach(v.stage + 1, v.decided_at)
      adopted.push(v.digest)
    }
  }
  const aborted = abortedBy !== undefined
  const phase: RolloutPhase = aborted ? 'aborted' : stage === last ? 'promoted' : paused ? 'paused' : 'rolling'
  const view: RolloutView = { phase, stage, stageStartedAt: started, paused, aborted, adopted }
  if (abortedBy) view.abortedBy = abortedBy
  return view
}

/** Status of a release for people and `llmesh rollout status --json`. */
export interface RolloutStatus {
  phase: RolloutPhase
  stage: number
  stageName: string
  /** `aborted`, `promoted`, `paused` or the current stage's name (e.g. `pilot`, `canary`). */
  status: string
}

/** The status of a release. */
export function rolloutStatus(state: RolloutState): RolloutStatus {
  const v = deriveView(state)
  const stageName = state.stages[v.stage]
  return { phase: v.phase, stage: v.stage, stageName, status: v.phase === 'rolling' ? stageName : v.phase }
}
