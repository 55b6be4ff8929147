import assert from 'node:assert/strict'
import {appendFileSync, chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {startWatch} from '../support/cli.js'
import {makeFixture, waitFor, type Fixture} from '../support/fixture.js'

function initialised(): Fixture {
  const f = makeFixture()
  const init = f.node.run(['init', '--manifest', f.manifest])
  assert.equal(init.status, 0, init.stderr)
  return f
}

function status(f: Fixture) {
  return JSON.parse(readFileSync(join(f.node.store, 'comet-status', 'web01.json'), 'utf8')).data
}

describe('comet fence', () => {
  it('runs the named procedure by hand and records it as an incident', () => {
    const f = initialised()
    const result = f.node.run(['fence', '--procedure', 'record', '--json'])
    assert.equal(result.status, 0, result.stderr)
    assert.equal(f.fenceRuns().length, 1)
    assert.match(f.fenceRuns()[0], / manual inc-/)
    assert.equal(result.json.incident.source, 'manual')
    assert.equal(status(f).state, 'fenced')
    assert.equal(status(f).incidents.at(-1).id, result.json.incident.id)
  })

  it('--sentinel runs that sentinel\'s procedure with COMET_SENTINEL set', () => {
    const f = initialised()
    assert.equal(f.node.run(['fence', '--sentinel', f.existing]).status, 0)
    assert.equal(f.fenceRuns()[0].split(' ')[0], f.existing)
  })

  it('--dry-run runs nothing and writes nothing', () => {
    const f = initialised()
    const before = readFileSync(join(f.node.store, 'comet-status', 'web01.json'), 'utf8')
    const result = f.node.run(['fence', '--dry-run', '--json'])
    assert.equal(result.status, 0)
    assert.equal(result.json.incident.procedures[0].skipped, 'dry-run')
    assert.deepEqual(f.fenceRuns(), [])
    assert.equal(readFileSync(join(f.node.store, 'comet-status', 'web01.json'), 'utf8'), before)
  })

  it('an unknown procedure or sentinel is refused with exit 2', () => {
    const f = initialised()
    const procedure = f.node.run(['fence', '--procedure', 'nope'])
    assert.equal(procedure.status, 2)
    assert.match(procedure.stderr, /no fencing procedure named nope/)
    const sentinel = f.node.run(['fence', '--sentinel', '/etc/passwd'])
    assert.equal(sentinel.status, 2)
    assert.match(sentinel.stderr, /\/etc\/passwd is not a sentinel/)
  })

  it('a procedure that fails exits 2 and its output and exit code are recorded', () => {
    const f = makeFixture()
    const manifest = f.node.writeManifest(`sentinels:\n  - path: ${f.planted[0]}\n    create: true\nfencing:\n  broken: echo "cannot stop the database" >&2; exit 3\ndefault_fencing: broken\n`, 'broken.yaml')
    assert.equal(f.node.run(['init', '--manifest', manifest]).status, 0)
    const result = f.node.run(['fence', '--json'])
    assert.equal(result.status, 2)
    assert.equal(result.json.incident.procedures[0].exitCode, 3)
    assert.equal(result.json.incident.procedures[0].output, 'cannot stop the database\n')
  })

  it('a hung procedure is killed after its timeout, with whatever it started', () => {
    const f = makeFixture()
    const marker = join(f.node.root, 'still-running')
    const manifest = f.node.writeManifest(`sentinels:\n  - path: ${f.planted[0]}\n    create: true\nfencing:\n  hang: (sleep 3; touch ${marker}) & sleep 30\ndefault_fencing: hang\n`, 'hang.yaml')
    assert.equal(f.node.run(['init', '--manifest', manifest]).status, 0)
    appendFileSync(f.planted[0], 'x')
    const result = f.node.run(['verify', '--json'], {COMET_PROCEDURE_TIMEOUT_MS: '500'})
    assert.equal(result.status, 1)
    const run = result.json.incident.procedures[0]
    assert.equal(run.timedOut, true)
    assert.equal(run.signal, 'SIGKILL')
    return new Promise<void>((resolve, reject) =>
      setTimeout(() => {
        try {
          assert.throws(() => readFileSync(marker), /ENOENT/, 'a child of the hung procedure survived the kill')
          resolve()
        } catch (error) {
          reject(error)
        }
      }, 3500),
    )
  })
})

describe('comet reset', () => {
  it('lets the procedures run again after an incident', () => {
    const f = initialised()
    appendFileSync(f.planted[0], 'x')
    assert.equal(f.node.run(['verify']).status, 1)
    assert.equal(status(f).state, 'fenced')
    const reset = f.node.run(['reset', '--json'])
    assert.equal(reset.status, 0, reset.stderr)
    assert.deepEqual(reset.json.cleared, ['record'])
    assert.equal(f.node.run(['verify']).status, 1)
    assert.equal(f.fenceRuns().length, 2)
  })

  it('--replant plants a tripped sentinel anew and verify is clean again', () => {
    const f = initialised()
    rmSync(f.planted[0])
    appendFileSync(f.existing, 'legitimate change')
    assert.equal(f.node.run(['verify']).status, 1)
    const reset = f.node.run(['reset', '--replant', '--json'])
    assert.equal(reset.status, 0, reset.stderr)
    assert.deepEqual(reset.json.replanted.map((r: {action: string}) => r.action).sort(), ['accepted', 'created'])
    const verify = f.node.run(['verify', '--json'])
    assert.equal(verify.status, 0, verify.stdout)
    assert.equal(status(f).state, 'ok')
  })

  it('--replant beside a running agent: the agent takes the new files as the sentinels, and does not fence again', async () => {
    const f = initialised()
    const agent = await startWatch(f.node, ['--no-fanotify'])
    let code: number | null
    try {
      rmSync(f.planted[0])
      await waitFor('the procedure', () => f.fenceRuns().length === 1)
      const reset = f.node.run(['reset', '--replant', '--json'])
      assert.equal(reset.status, 0, reset.stderr)
      assert.equal(reset.json.watchNotified, true)
      await waitFor('the agent to reload', () => agent.log().includes('reloading after SIGHUP'))
      // The replanted file is a new inode: an agent with its old identities would call it a replacement.
      await new Promise((resolve) => setTimeout(resolve, 1000))
      assert.equal(f.fenceRuns().length, 1, agent.log())
      assert.equal(status(f).state, 'ok')
      assert.equal(status(f).incidentsTotal, 1, `the replant itself is not an incident: ${agent.log()}`)
      // And it still watches.
      appendFileSync(f.planted[1], 'encrypted')
      await waitFor('the procedure again', () => f.fenceRuns().length === 2).catch((error) => assert.fail(`${error.message}: ${agent.log()}`))
    } finally {
      code = await agent.stop()
    }
    assert.equal(code, 0, agent.log())
  })

  it('ends the warnings of a chmod by accepting the new mode', () => {
    const f = initialised()
    chmodSync(f.planted[0], 0o640)
    assert.ok(f.node.run(['verify', '--json']).json.sentinels[0].warnings.length > 0)
    assert.equal(f.node.run(['reset']).status, 0)
    assert.deepEqual(f.node.run(['verify', '--json']).json.sentinels[0].warnings, [])
  })
})

describe('reports are spooled when the store cannot take them, and never lost', () => {
  it('an incident reported while comet-status/ is unwritable arrives with the next run', () => {
    const f = initialised()
    const statusFolder = join(f.node.store, 'comet-status')
    // A store that cannot take the report: its status folder is swapped for a file.
    renameSync(statusFolder, `${statusFolder}.away`)
    writeFileSync(statusFolder, 'not a folder', {mode: 0o600})
    appendFileSync(f.planted[0], 'x')
    const verify = f.node.run(['verify', '--json'])
    assert.equal(verify.status, 1)
    assert.equal(f.fenceRuns().length, 1, 'fencing does not wait for the store')
    assert.ok(verify.json.report.pending >= 1)
    rmSync(statusFolder)
    mkdirSync(statusFolder, {mode: 0o700})
    const next = f.node.run(['verify', '--json'])
    assert.equal(next.json.report.pending, 0)
    const incidents = status(f).incidents
    assert.equal(incidents.length, 1)
    assert.equal(incidents[0].id, verify.json.incident.id)
    assert.equal(incidents[0].procedures[0].exitCode, 0)
  })
})
