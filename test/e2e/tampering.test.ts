import assert from 'node:assert/strict'
import {chmodSync, renameSync, rmSync, truncateSync, utimesSync, writeFileSync, appendFileSync} from 'node:fs'
import {describe, it} from 'node:test'

import {startWatch} from '../support/cli.js'
import {makeFixture, waitFor, type Fixture} from '../support/fixture.js'
import {overflowQueue} from '../support/inotify-overflow.js'

/** Each way ransomware (or an operator) can touch a sentinel, and what comet must make of it. */
const TAMPERINGS: Array<{name: string; reason: string; recorded?: string; act: (path: string) => void}> = [
  {name: 'overwrite in place', reason: 'modified', act: (path) => writeFileSync(path, Buffer.alloc(4096, 0x41))},
  {name: 'append', reason: 'modified', act: (path) => appendFileSync(path, 'encrypted')},
  {name: 'truncate', reason: 'modified', act: (path) => truncateSync(path, 0)},
  // Not read at all (its size already differs): a terabyte of zeros would otherwise hold the agent for minutes.
  {name: 'grow to a terabyte (sparse)', reason: 'modified', act: (path) => truncateSync(path, 2 ** 40)},
  {name: 'delete', reason: 'deleted', act: (path) => rmSync(path)},
  {name: 'rename away', reason: 'deleted', recorded: 'renamed', act: (path) => renameSync(path, `${path}.locked`)},
  {
    name: 'rename over it with new content',
    reason: 'replaced',
    act: (path) => {
      writeFileSync(`${path}.tmp`, 'ciphertext')
      renameSync(`${path}.tmp`, path)
    },
  },
]

function initialised(): Fixture {
  const f = makeFixture()
  const init = f.node.run(['init', '--manifest', f.manifest])
  assert.equal(init.status, 0, init.stderr)
  return f
}

describe('comet verify on each tampering', () => {
  for (const tampering of TAMPERINGS)
    it(`${tampering.name}: exit 1, the procedure runs exactly once with COMET_REASON=${tampering.reason}`, () => {
      const f = initialised()
      tampering.act(f.planted[0])
      const first = f.node.run(['verify', '--json'])
      assert.equal(first.status, 1, first.stderr)
      const runs = f.fenceRuns()
      assert.equal(runs.length, 1)
      assert.equal(runs[0].split(' ').slice(0, 2).join(' '), `${f.planted[0]} ${tampering.reason}`)
      assert.equal(first.json.incident.sentinels[0].reason, tampering.recorded ?? tampering.reason)
      assert.equal(first.json.incident.procedures[0].exitCode, 0)
      const again = f.node.run(['verify'])
      assert.equal(again.status, 1)
      assert.equal(f.fenceRuns().length, 1, 'the procedure must not run twice before comet reset')
    })

  it('chmod, chown and touch are warnings in the status, not fences', () => {
    const f = initialised()
    chmodSync(f.planted[0], 0o644)
    utimesSync(f.planted[1], new Date(), new Date(Date.now() - 3600_000))
    const verify = f.node.run(['verify', '--json'])
    assert.equal(verify.status, 0, verify.stderr)
    assert.deepEqual(f.fenceRuns(), [])
    const warnings = verify.json.sentinels.flatMap((s: {warnings: string[]}) => s.warnings)
    assert.ok(warnings.some((w: string) => w.includes('mode changed 600 -> 644')), warnings.join('; '))
    assert.ok(warnings.some((w: string) => w.includes('mtime changed')), warnings.join('; '))
  })

  it('verify --no-fence reports tampering (exit 1) and runs nothing; a later verify does fence', () => {
    const f = initialised()
    appendFileSync(f.existing, 'x')
    assert.equal(f.node.run(['verify', '--no-fence']).status, 1)
    assert.deepEqual(f.fenceRuns(), [])
    assert.equal(f.node.run(['verify']).status, 1)
    assert.equal(f.fenceRuns().length, 1)
  })

  it('many sentinels tripping together run their shared procedure once, and every one is recorded', () => {
    const f = initialised()
    for (const path of [...f.planted, f.existing]) appendFileSync(path, 'x')
    const verify = f.node.run(['verify', '--json'])
    assert.equal(verify.status, 1)
    assert.equal(f.fenceRuns().length, 1)
    assert.equal(verify.json.incident.sentinels.length, 3)
  })
})

describe('comet watch on each tampering', () => {
  for (const tampering of TAMPERINGS)
    it(`${tampering.name}: detected and fenced once while watching`, async () => {
      const f = initialised()
      const agent = await startWatch(f.node, ['--no-fanotify'])
      let code: number | null
      try {
        tampering.act(f.planted[0])
        await waitFor('the procedure to run', () => f.fenceRuns().length > 0)
        // Events keep coming (write, close, rename); none may run the procedure again.
        await new Promise((resolve) => setTimeout(resolve, 300))
        const runs = f.fenceRuns()
        assert.equal(runs.length, 1)
        assert.equal(runs[0].split(' ')[1], tampering.reason)
      } finally {
        code = await agent.stop()
      }
      assert.equal(code, 0, agent.log())
    })

  it('the removal of a sentinel\'s directory fences', async () => {
    const f = initialised()
    const agent = await startWatch(f.node, ['--no-fanotify'])
    let code: number | null
    try {
      renameSync(f.node.data, `${f.node.data}.gone`)
      await waitFor('the procedure to run', () => f.fenceRuns().length > 0)
      assert.match(f.fenceRuns()[0], / directory-removed /)
    } finally {
      // The agent still writes its spool while stopping; the fixture folder goes only after it exited.
      code = await agent.stop()
    }
    assert.equal(code, 0, agent.log())
  })

  it('an inotify queue overflow makes the agent check every sentinel at once, and so catch a write whose event was lost', async () => {
    const f = initialised()
    const agent = await startWatch(f.node, ['--no-fanotify'])
    let code: number | null
    try {
      // A stopped agent reads nothing: the kernel's queue overflows, and the append after it is lost with the
      // rest. --interval is an hour, so only the overflow can bring the agent to it.
      agent.process.kill('SIGSTOP')
      try {
        overflowQueue(f.node.data)
        appendFileSync(f.planted[0], 'encrypted')
      } finally {
        agent.process.kill('SIGCONT')
      }
      await waitFor('the procedure to run', () => f.fenceRuns().length > 0, 20_000)
      assert.match(f.fenceRuns()[0], / modified /)
      assert.match(agent.log(), /inotify queue overflowed/)
    } finally {
      code = await agent.stop()
    }
    assert.equal(code, 0, agent.log())
  })

  it('touch is not a fence while watching, and SIGINT exits 0', async () => {
    const f = initialised()
    const agent = await startWatch(f.node, ['--no-fanotify'])
    utimesSync(f.planted[0], new Date(), new Date())
    chmodSync(f.planted[1], 0o640)
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.deepEqual(f.fenceRuns(), [])
    assert.equal(await agent.stop('SIGINT'), 0, agent.log())
  })
})
