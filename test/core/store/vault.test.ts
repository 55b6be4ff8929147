import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {CasConflictError, CometError, StoreUnavailableError} from '../../../src/core/errors/index.js'
import {VaultStore, vaultSettingsFromEnvironment} from '../../../src/core/store/vault.js'
import {tempDir} from '../../support/temp-dir.js'
import {blackHole, freePort, VaultServer} from '../../support/vault-server.js'

describe('VaultStore against a real Vault server (KV v2)', () => {
  // Made here, not in before(): tempDir() registers its clean-up with after(), which belongs to the suite.
  const vaultDirectory = tempDir('comet-vault-')
  let vault: VaultServer
  let store: VaultStore

  before(async () => {
    vault = await VaultServer.start(vaultDirectory)
    store = VaultStore.fromEnvironment({VAULT_ADDR: vault.address, VAULT_TOKEN: vault.rootToken})
  })
  after(async () => {
    await store?.close()
    await vault?.stop()
  })

  it('reads an absent document as null and round-trips a written one with its version', async () => {
    assert.equal(await store.read('comets/nobody'), null)
    const first = await store.write('comets/unit', {'unit:create:/x': ''}, {cas: 0})
    assert.equal(first, 1)
    const second = await store.write('comets/unit', {'unit:create:/x': 'a'.repeat(64)}, {cas: 1})
    assert.equal(second, 2)
    assert.deepEqual(await store.read('comets/unit'), {data: {'unit:create:/x': 'a'.repeat(64)}, version: 2})
    assert.deepEqual((await vault.get('comets/unit'))?.['unit:create:/x'], 'a'.repeat(64))
  })

  it('refuses a stale check-and-set write with CasConflictError and keeps the newer content', async () => {
    await store.write('comets/cas', {k: 'one'})
    await store.write('comets/cas', {k: 'two'})
    await assert.rejects(store.write('comets/cas', {k: 'stale'}, {cas: 1}), CasConflictError)
    assert.deepEqual((await store.read('comets/cas'))?.data, {k: 'two'})
  })

  it('lists documents under a folder, without sub-folders; an absent folder lists empty', async () => {
    await store.write('listing/a', {x: 1})
    await store.write('listing/b', {x: 1})
    await store.write('listing/sub/c', {x: 1})
    assert.deepEqual(await store.list('listing'), ['a', 'b'])
    assert.deepEqual(await store.list('absent-folder'), [])
  })

  it('a 403 names the key and never the token', async () => {
    const denied = VaultStore.fromEnvironment({VAULT_ADDR: vault.address, VAULT_TOKEN: 'hvs.NotARealTokenButShapedLikeOne1234'})
    await assert.rejects(denied.read('comets/unit'), (error: Error) => {
      assert.ok(error instanceof CometError)
      assert.match(error.message, /comets\/unit/)
      assert.match(error.message, /403/)
      assert.doesNotMatch(error.message, /NotARealToken/)
      return true
    })
  })

  it('a refused connection is StoreUnavailableError', async () => {
    const closed = VaultStore.fromEnvironment({VAULT_ADDR: `http://127.0.0.1:${await freePort()}`, VAULT_TOKEN: 'x'})
    await assert.rejects(closed.read('comets/unit', {timeoutMs: 2000}), (error: Error) => error instanceof StoreUnavailableError && /unreachable \(ECONNREFUSED\)/.test(error.message))
  })

  it('a black-holed Vault (accepts, never answers) fails as unavailable once the timeout passes', async () => {
    const hole = await blackHole()
    try {
      const silent = VaultStore.fromEnvironment({VAULT_ADDR: hole.address, VAULT_TOKEN: 'x'})
      await assert.rejects(silent.write('comet-status/unit', {state: 'ok'}, {timeoutMs: 300}), StoreUnavailableError)
    } finally {
      await hole.close()
    }
  })

  it('configuration comes from Vault\'s own variables; a missing VAULT_ADDR is a clear error', () => {
    assert.throws(() => vaultSettingsFromEnvironment({}), /needs VAULT_ADDR/)
    const settings = vaultSettingsFromEnvironment({VAULT_ADDR: 'https://vault:8200/', VAULT_NAMESPACE: 'ops', COMET_VAULT_MOUNT: 'kv'})
    assert.equal(settings.address, 'https://vault:8200')
    assert.equal(settings.namespace, 'ops')
    assert.equal(settings.mount, 'kv')
    assert.equal(settings.roleIdFile, '/etc/comet/role_id')
  })
})
