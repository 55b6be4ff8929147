import assert from 'node:assert/strict'
import {appendFileSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {startWatch} from '../support/cli.js'
import {makeFixture, type Fixture} from '../support/fixture.js'
import {freePort} from '../support/vault-server.js'

function initialised(): Fixture {
  const f = makeFixture()
  const init = f.node.run(['init', '--manifest', f.manifest])
  assert.equal(init.status, 0, init.stderr)
  return f
}

/** Moves the node's last heartbeat into the past, as an agent that stopped reporting leaves it. */
function ageHeartbeat(f: Fixture, seconds: number): void {
  const file = join(f.node.store, 'comet-status', 'web01.json')
  const document = JSON.parse(readFileSync(file, 'utf8'))
  document.data.heartbeatAt = new Date(Date.now() - seconds * 1000).toISOString()
  writeFileSync(file, JSON.stringify(document))
}

describe('comet status', () => {
  it('after init: exit 0, the node ok with a fresh heartbeat, no agent running, nothing spooled', () => {
    const f = initialised()
    const result = f.node.run(['status', '--json'])
    assert.equal(result.status, 0, result.stderr)
    assert.equal(result.json.status.state, 'ok')
    assert.equal(result.json.status.sentinels.intact, 3)
    assert.ok(result.json.heartbeatAgeSeconds >= 0 && result.json.heartbeatAgeSeconds < 60, String(result.json.heartbeatAgeSeconds))
    assert.deepEqual(result.json.watch, {running: false})
    assert.equal(result.json.spooledReports, 0)
    assert.deepEqual(result.json.problems, [])
    const table = f.node.run(['status'])
    assert.equal(table.status, 0)
    assert.match(table.stdout, /^state\s+ok$/m)
    assert.match(table.stdout, /^sentinels\s+3\/3 intact, 0 tampered$/m)
    assert.match(table.stdout, /^comet watch\s+not running on this machine$/m)
  })

  it('a node no agent has reported for: exit 2, naming the status document', () => {
    const f = makeFixture()
    const result = f.node.run(['status'])
    assert.equal(result.status, 2)
    assert.match(result.stderr, /comet-status\/web01 is absent/)
  })

  it('after an incident: exit 1, the node fenced, its incident and the closed latch listed', () => {
    const f = initialised()
    appendFileSync(f.planted[0], 'encrypted')
    assert.equal(f.node.run(['verify']).status, 1)
    const result = f.node.run(['status', '--json'])
    assert.equal(result.status, 1, result.stderr)
    assert.equal(result.json.status.state, 'fenced')
    assert.deepEqual(result.json.latchedProcedures, ['record'])
    const table = f.node.run(['status'])
    assert.equal(table.status, 1)
    assert.match(table.stdout, /^state\s+fenced$/m)
    assert.match(table.stdout, new RegExp(`inc-\\S+\\s+\\S+\\s+${f.planted[0].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} modified\\s+record: exit 0`))
    assert.match(table.stdout, /latch\s+closed for record/)
    assert.equal(f.node.run(['reset']).status, 0)
    assert.equal(f.node.run(['status']).status, 1, 'the sentinel is still tampered until it is planted anew')
    assert.equal(f.node.run(['reset', '--replant']).status, 0)
    const after = f.node.run(['status', '--json'])
    assert.equal(after.status, 0, after.stderr)
    assert.deepEqual(after.json.latchedProcedures, [])
  })

  it('--max-age: a heartbeat older than the bound is an agent gone silent, exit 2', () => {
    const f = initialised()
    ageHeartbeat(f, 3600)
    assert.equal(f.node.run(['status']).status, 0, 'without --max-age the age alone is no problem')
    const stale = f.node.run(['status', '--max-age', '180'])
    assert.equal(stale.status, 2)
    assert.match(stale.stderr, /heartbeat is 3[56]\d\d s old \(more than --max-age 180 s\)/)
    assert.equal(f.node.run(['status', '--max-age', '7200']).status, 0)
  })

  it('--require-watch: exit 2 without an agent, 0 with comet watch running, which it names by pid', async () => {
    const f = initialised()
    const missing = f.node.run(['status', '--require-watch'])
    assert.equal(missing.status, 2)
    assert.match(missing.stderr, /no comet watch is running for node web01/)
    const agent = await startWatch(f.node, ['--no-fanotify'])
    try {
      const running = f.node.run(['status', '--require-watch', '--json'])
      assert.equal(running.status, 0, running.stderr)
      assert.deepEqual(running.json.watch, {running: true, pid: agent.process.pid})
    } finally {
      assert.equal(await agent.stop(), 0)
    }
    assert.equal(f.node.run(['status', '--require-watch']).status, 2, 'a stopped agent is not running')
  })

  it('a store that cannot be reached: exit 2, the store named, the local spool still shown, no token printed', async () => {
    const f = initialised()
    const address = `http://127.0.0.1:${await freePort()}`
    const token = 'hvs.status-test-token-never-printed'
    const result = f.node.run(['status', '--store', 'vault', '--json'], {VAULT_ADDR: address, VAULT_TOKEN: token, COMET_READ_TIMEOUT_MS: '2000'})
    assert.equal(result.status, 2)
    assert.match(result.json.storeError, new RegExp(`Vault at ${address}.*unreachable`))
    assert.equal(result.json.spooledReports, 0)
    assert.ok(!result.stdout.includes(token) && !result.stderr.includes(token))
  })
})
