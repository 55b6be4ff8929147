import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {TestNode} from './cli.js'
import {tempDir} from './temp-dir.js'

export interface Fixture {
  node: TestNode
  manifest: string
  /** Sentinels the agent creates. */
  planted: string[]
  /** An existing file put under observation. */
  existing: string
  /** Each run of the procedure appends one line: "<sentinel> <reason> <incident>". */
  fenceLog: string
  fenceRuns: () => string[]
}

/** A node with three sentinels (two created, one existing) and a procedure that records every run. */
export function makeFixture(name = 'web01'): Fixture {
  const node = new TestNode(tempDir(), name)
  const fenceLog = join(node.root, 'fenced.log')
  const planted = [join(node.data, '.~lock.ledger.ods#'), join(node.data, 'aaa-invoices.xlsx')]
  const existing = join(node.data, 'orders.db')
  writeFileSync(existing, 'SQLite format 3\u0000 pretend database\n')
  const manifest = node.writeManifest(`node: ${name}
sentinels:
  - path: ${planted[0]}
    create: true
  - path: ${planted[1]}
    create: true
  - path: ${existing}
    create: false
    fencing: record
fencing:
  record: echo "$COMET_SENTINEL $COMET_REASON $COMET_INCIDENT" >> ${fenceLog}
default_fencing: record
`)
  return {
    node,
    manifest,
    planted,
    existing,
    fenceLog,
    fenceRuns: () => (existsSync(fenceLog) ? readFileSync(fenceLog, 'utf8').split('\n').filter(Boolean) : []),
  }
}

/** Polls until `condition` holds; fails with `what` after `timeoutMs` (a bound for correctness, not a timing assertion). */
export async function waitFor(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
