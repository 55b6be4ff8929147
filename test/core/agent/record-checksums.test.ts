import assert from 'node:assert/strict'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {recordChecksums} from '../../../src/core/agent/record-checksums.js'
import {AgentSession} from '../../../src/core/agent/session.js'
import {resolveOptions} from '../../../src/core/config/agent-options.js'
import {EmbeddedStore} from '../../../src/core/store/embedded.js'
import {encodeProcedure} from '../../../src/core/topology/fencing-document.js'
import {tempDir} from '../../support/temp-dir.js'

describe('recording checksums with check-and-set', () => {
  it('an edit Ansible made between the agent\'s read and write survives; the agent changes only its own keys', async () => {
    const root = tempDir()
    const store = new EmbeddedStore(join(root, 'store'))
    await store.write('fencing/p', {...encodeProcedure('true')})
    await store.write('fencing/q', {...encodeProcedure('false')})
    await store.write('comets/web01', {'web01:create:/srv/a': '', 'web01:fencing_procedure:/srv/a': 'p', 'web01:create:/srv/b': '', 'web01:fencing_procedure:/srv/b': 'p'})
    const session = await AgentSession.open(resolveOptions({store: `file:${join(root, 'store')}`, stateDir: join(root, 'state'), node: 'web01'}, {}))
    const write = session.store.write.bind(session.store)
    let interleaved = false
    // Ansible writes first, after the agent has read: the agent's check-and-set write must fail and merge.
    session.store.write = async (path, data, options) => {
      if (!interleaved && path === 'comets/web01') {
        interleaved = true
        await store.write('comets/web01', {'web01:create:/srv/a': '', 'web01:fencing_procedure:/srv/a': 'p', 'web01:create:/srv/b': '', 'web01:fencing_procedure:/srv/b': 'q', 'web01:create:/srv/c': '', 'web01:fencing_procedure:/srv/c': 'q'})
      }
      return write(path, data, options)
    }
    const checksum = 'a'.repeat(64)
    try {
      const topology = await recordChecksums(session, [{path: '/srv/a', mode: 'create', checksum, previous: ''}])
      assert.ok(interleaved)
      const document = (await store.read('comets/web01'))?.data
      assert.equal(document?.['web01:create:/srv/a'], checksum)
      assert.equal(document?.['web01:fencing_procedure:/srv/b'], 'q', 'Ansible\'s edit survives')
      assert.equal(document?.['web01:create:/srv/c'], '', 'the sentinel Ansible added survives')
      assert.equal(topology.sentinels.length, 3)
    } finally {
      await session.close()
    }
  })

  it('never overwrites a checksum that someone else changed from the value the agent expected', async () => {
    const root = tempDir()
    const store = new EmbeddedStore(join(root, 'store'))
    await store.write('fencing/p', {...encodeProcedure('true')})
    await store.write('comets/web01', {'web01:already_present:/srv/a': 'b'.repeat(64), 'web01:fencing_procedure:/srv/a': 'p'})
    const session = await AgentSession.open(resolveOptions({store: `file:${join(root, 'store')}`, stateDir: join(root, 'state'), node: 'web01'}, {}))
    try {
      await recordChecksums(session, [{path: '/srv/a', mode: 'already_present', checksum: 'c'.repeat(64), previous: ''}])
      assert.equal((await store.read('comets/web01'))?.data['web01:already_present:/srv/a'], 'b'.repeat(64))
    } finally {
      await session.close()
    }
  })
})
