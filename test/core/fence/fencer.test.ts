import {existsSync, mkdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import assert from 'node:assert/strict'

import {FenceLatch} from '../../../src/core/fence/fence-latch.js'
import {Fencer, type Fencing} from '../../../src/core/fence/fencer.js'
import {ProcedureRunner} from '../../../src/core/fence/procedure-runner.js'
import type {Incident, TrippedSentinel} from '../../../src/core/report/node-status.js'
import {tempDir} from '../../support/temp-dir.js'

const base = tempDir('comet-fencer-')
let counter = 0

interface Machine {
  fencer: Fencer
  latch: FenceLatch
  latchFile: string
  runner: ProcedureRunner
  /** Lines appended by the procedures: "<procedure> <sentinel> <reason> <incident>". */
  log: () => string[]
}

/** A node with two procedures that record each run in a log, a real latch and a real runner. */
function machine(): Machine {
  const dir = join(base, `case-${counter++}`)
  const runs = join(dir, 'runs')
  mkdirSync(runs, {recursive: true, mode: 0o700})
  const logFile = join(dir, 'fence.log')
  const record = (name: string) => `echo "${name} $COMET_SENTINEL $COMET_REASON $COMET_INCIDENT" >> '${logFile}'`
  const latchFile = join(dir, 'latch.json')
  const latch = new FenceLatch(latchFile)
  const runner = new ProcedureRunner({outputDirectory: runs, timeoutMs: 30_000, baseEnvironment: {COMET_NODE: 'web01'}})
  const fencer = new Fencer('web01', {isolate: record('isolate'), 'stop-db': record('stop-db')}, latch, runner)
  return {fencer, latch, latchFile, runner, log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : [])}
}

function tripped(path: string, procedure: string, reason: TrippedSentinel['reason'] = 'modified'): TrippedSentinel {
  return {path, reason, detail: 'test', procedure, at: new Date().toISOString()}
}

async function ended(fencing: Fencing): Promise<Incident> {
  const keepAlive = setInterval(() => {}, 1000)
  try {
    return await fencing.finished
  } finally {
    clearInterval(keepAlive)
  }
}

describe('Fencer', () => {
  it('runs a shared procedure once when two of its sentinels trip together', async () => {
    const m = machine()
    try {
      const fencing = m.fencer.trip([tripped('/srv/a', 'isolate'), tripped('/srv/b', 'isolate', 'deleted')], 'watch')
      const incident = await ended(fencing)
      assert.equal(incident.procedures.length, 1)
      assert.equal(incident.procedures[0].name, 'isolate')
      assert.equal(incident.procedures[0].exitCode, 0)
      assert.equal(incident.sentinels.length, 2)
      assert.deepEqual(m.log(), [`isolate /srv/a modified ${incident.id}`])
      assert.ok(incident.endedAt)
    } finally {
      m.runner.close()
    }
  })

  it('runs each distinct procedure of an incident once', async () => {
    const m = machine()
    try {
      const incident = await ended(m.fencer.trip([tripped('/srv/a', 'isolate'), tripped('/var/db', 'stop-db'), tripped('/srv/b', 'isolate')], 'watch'))
      assert.deepEqual(incident.procedures.map((run) => run.name).sort(), ['isolate', 'stop-db'])
      assert.deepEqual(m.log().map((line) => line.split(' ')[0]).sort(), ['isolate', 'stop-db'])
    } finally {
      m.runner.close()
    }
  })

  it('does not run a procedure again for a later trip, until reset', async () => {
    const m = machine()
    try {
      await ended(m.fencer.trip([tripped('/srv/a', 'isolate')], 'watch'))
      const again = await ended(m.fencer.trip([tripped('/srv/b', 'isolate')], 'watch'))
      assert.deepEqual(
        again.procedures.map(({name, skipped}) => ({name, skipped})),
        [{name: 'isolate', skipped: 'already-ran'}],
      )
      assert.equal(m.log().length, 1)
    } finally {
      m.runner.close()
    }
  })

  it('runs the procedure of a later sentinel when that procedure has not run yet', async () => {
    const m = machine()
    try {
      const first = await ended(m.fencer.trip([tripped('/srv/a', 'isolate')], 'watch'))
      const second = await ended(m.fencer.trip([tripped('/srv/a', 'isolate'), tripped('/var/db', 'stop-db', 'deleted')], 'watch'))
      const byName = Object.fromEntries(second.procedures.map((run) => [run.name, run]))
      assert.equal(byName.isolate.skipped, 'already-ran')
      assert.equal(byName['stop-db'].skipped, undefined)
      assert.equal(byName['stop-db'].exitCode, 0)
      assert.deepEqual(m.log(), [`isolate /srv/a modified ${first.id}`, `stop-db /var/db deleted ${second.id}`])
    } finally {
      m.runner.close()
    }
  })

  it('keeps the latch across a restart: a new agent does not run the procedure again', async () => {
    const m = machine()
    try {
      await ended(m.fencer.trip([tripped('/srv/a', 'isolate')], 'watch'))
      const restarted = new Fencer('web01', {isolate: 'echo again'}, new FenceLatch(m.latchFile), m.runner)
      const incident = await ended(restarted.trip([tripped('/srv/a', 'isolate', 'deleted')], 'verify'))
      assert.equal(incident.procedures[0].skipped, 'already-ran')
      assert.equal(m.log().length, 1)
    } finally {
      m.runner.close()
    }
  })

  it('with noFence runs nothing, records the run as skipped, and leaves the latch open', async () => {
    const m = machine()
    try {
      const incident = await ended(m.fencer.trip([tripped('/srv/a', 'isolate')], 'verify', {noFence: true}))
      assert.deepEqual(
        incident.procedures.map(({name, skipped}) => ({name, skipped})),
        [{name: 'isolate', skipped: 'no-fence'}],
      )
      assert.deepEqual(m.log(), [])
      assert.equal(incident.endedAt, incident.startedAt)
      assert.deepEqual(m.latch.procedures, [])
      assert.equal(m.latch.hasTripped('/srv/a', 'modified'), false)
    } finally {
      m.runner.close()
    }
  })

  it('with dryRun runs nothing, records the run as skipped, and leaves the latch open', async () => {
    const m = machine()
    try {
      const incident = await ended(m.fencer.trip([tripped('/srv/a', 'isolate'), tripped('/var/db', 'stop-db')], 'verify', {dryRun: true}))
      assert.deepEqual(
        incident.procedures.map(({name, skipped}) => ({name, skipped})),
        [
          {name: 'isolate', skipped: 'dry-run'},
          {name: 'stop-db', skipped: 'dry-run'},
        ],
      )
      assert.deepEqual(m.log(), [])
      assert.deepEqual(m.latch.procedures, [])
      // The latch is still open: a real trip afterwards runs the procedure.
      await ended(m.fencer.trip([tripped('/srv/a', 'isolate')], 'watch'))
      assert.equal(m.log().length, 1)
    } finally {
      m.runner.close()
    }
  })

  it('with force runs a procedure even when it already ran', async () => {
    const m = machine()
    try {
      await ended(m.fencer.trip([tripped('/srv/a', 'isolate')], 'watch'))
      const forced = await ended(m.fencer.trip([tripped('/srv/a', 'isolate', 'manual')], 'manual', {force: true}))
      assert.equal(forced.procedures[0].skipped, undefined)
      assert.equal(forced.procedures[0].exitCode, 0)
      assert.deepEqual(m.log().map((line) => line.split(' ').slice(0, 3).join(' ')), ['isolate /srv/a modified', 'isolate /srv/a manual'])
      assert.deepEqual(m.latch.procedures, ['isolate'])
    } finally {
      m.runner.close()
    }
  })

  it('closes the latch on disk once a procedure has started', async () => {
    const m = machine()
    try {
      await ended(m.fencer.trip([tripped('/srv/a', 'stop-db')], 'watch'))
      const reloaded = new FenceLatch(m.latchFile)
      assert.deepEqual(reloaded.procedures, ['stop-db'])
      assert.equal(reloaded.hasTripped('/srv/a', 'modified'), true)
    } finally {
      m.runner.close()
    }
  })

  it('records an error for a procedure that is not known, and runs nothing for it', async () => {
    const m = machine()
    try {
      const incident = await ended(m.fencer.trip([tripped('/srv/a', 'missing-procedure')], 'watch'))
      assert.match(incident.procedures[0].error ?? '', /missing-procedure/)
      assert.deepEqual(m.log(), [])
    } finally {
      m.runner.close()
    }
  })

  it('does not count a procedure it could not start as run: a later trip, once it is known, runs it', async () => {
    const m = machine()
    try {
      await ended(m.fencer.trip([tripped('/srv/a', 'quarantine')], 'watch'))
      assert.deepEqual(m.latch.procedures, [], 'the latch (reported as fencedProcedures) lists only procedures that ran')
      m.fencer.updateProcedures({quarantine: 'echo quarantine'})
      const later = await ended(m.fencer.trip([tripped('/srv/b', 'quarantine')], 'watch'))
      assert.equal(later.procedures[0].skipped, undefined, JSON.stringify(later.procedures[0]))
      assert.equal(later.procedures[0].exitCode, 0)
    } finally {
      m.runner.close()
    }
  })

  it('gives every incident its own id', () => {
    const m = machine()
    try {
      const a = m.fencer.trip([tripped('/srv/a', 'isolate')], 'verify', {dryRun: true})
      const b = m.fencer.trip([tripped('/srv/a', 'isolate')], 'verify', {dryRun: true})
      assert.notEqual(a.incident.id, b.incident.id)
    } finally {
      m.runner.close()
    }
  })
})

describe('Fencer with a prepared launcher', () => {
  it('runs a shared procedure once and records its end', async () => {
    const m = machine()
    try {
      m.runner.prepare({})
      const incident = await ended(m.fencer.trip([tripped('/srv/a', 'isolate'), tripped('/srv/b', 'isolate')], 'watch'))
      assert.equal(incident.procedures.length, 1)
      assert.equal(incident.procedures[0].exitCode, 0)
      assert.deepEqual(m.log(), [`isolate /srv/a modified ${incident.id}`])
    } finally {
      m.runner.close()
    }
  })
})
