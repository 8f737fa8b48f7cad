#!/usr/bin/env node
import { fail } from './output.ts'
import { buildProgram } from './program.ts'

// Every command is a client of a daemon's API: send the operator's token when one is set.
const token = process.env.LLMESH_API_TOKEN
if (token !== undefined && token !== '') {
  const plain = globalThis.fetch
  globalThis.fetch = (input, init) => {
    const headers = new Headers(init?.headers)
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${token}`)
    return plain(input, { ...init, headers })
  }
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err) => fail(err))
