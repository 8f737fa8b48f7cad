/** docs/runbook.md, the on-call runbook the alerts link to: the commands and the policy it shows are real. */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, test } from 'node:test'
import { buildProgram } from '../../cli/program.ts'
import { parsePolicyYaml } from '../../protocols/rollout/policy-yaml.ts'
import { RUNBOOK } from './alert-rules-helpers.ts'

describe('docs/runbook.md', () => {
  /** The shell lines of the runbook's sh blocks and inline code that run `llmesh`, continuations joined. */
  async function llmeshCommands(): Promise<string[]> {
    const text = await readFile(RUNBOOK, 'utf8')
    const lines: string[] = []
    for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
      lines.push(...block[1].replace(/\\\n\s*/g, ' ').split('\n'))
    }
    for (const code of text.replace(/```[\s\S]*?```/g, '').matchAll(/`([^`]+)`/g)) lines.push(code[1])
    return lines
      .map((l) =>
        l
          .replace(/\s+#.*$/, '')
          .split(' | ')[0]
          .trim(),
      )
      .filter((l) => /^llmesh\s/.test(l))
  }

  test('every llmesh command and flag it shows exists in the CLI', async () => {
    const cmds = await llmeshCommands()
    assert.ok(cmds.length >= 25, `only ${cmds.length} commands found`)
    const program = buildProgram()
    for (const line of cmds) {
      const words = line.split(/\s+/).slice(1)
      let cmd = program
      let i = 0
      for (; i < words.length; i++) {
        const sub = cmd.commands.find((c) => c.name() === words[i])
        if (sub === undefined) break
        cmd = sub
      }
      assert.notEqual(cmd, program, `${line}: no such command`)
      assert.equal(cmd.commands.length, 0, `${line}: ${cmd.name()} needs a subcommand`)
      for (const w of words.slice(i)) {
        if (!w.startsWith('--')) continue
        const flag = w.split('=')[0]
        assert.ok(
          cmd.options.some((o) => o.long === flag),
          `${line}: llmesh ${cmd.name()} has no option ${flag}`,
        )
      }
    }
  })

  test('the narrower canary policy it shows is a valid policy, narrower than the default', async () => {
    const text = await readFile(RUNBOOK, 'utf8')
    const yamls = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]).filter((y) => y.startsWith('stages:'))
    assert.equal(yamls.length, 1)
    const policy = parsePolicyYaml(yamls[0], { filename: 'runbook.md' })
    const canary = policy.stages.find((s) => s.name === 'canary')
    assert.ok(canary !== undefined && canary.percent < 5, 'canary below the default 5 %')
    assert.equal(policy.gates.ooms?.max, 0)
  })
})
