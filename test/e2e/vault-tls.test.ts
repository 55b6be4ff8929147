import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {makeFixture} from '../support/fixture.js'
import {tempDir} from '../support/temp-dir.js'
import {VaultServer} from '../support/vault-server.js'

/** A CA and a certificate for 127.0.0.1 signed by it, made with openssl. */
function certificates(directory: string) {
  const file = (name: string) => join(directory, name)
  const openssl = (...args: string[]) => execFileSync('openssl', args, {stdio: 'ignore'})
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.pem'), '-subj', '/CN=comet test CA', '-days', '2')
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('vault.key'), '-out', file('vault.csr'), '-subj', '/CN=127.0.0.1')
  writeFileSync(file('san.ext'), 'subjectAltName=IP:127.0.0.1\n')
  openssl('x509', '-req', '-in', file('vault.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('vault.pem'), '-days', '2', '-extfile', file('san.ext'))
  return {certFile: file('vault.pem'), keyFile: file('vault.key'), caFile: file('ca.pem'), ca: readFileSync(file('ca.pem'))}
}

describe('--store vault over TLS with VAULT_CACERT', () => {
  const directory = tempDir('comet-vault-tls-')
  let vault: VaultServer
  let caFile: string

  before(async () => {
    const tls = certificates(directory)
    caFile = tls.caFile
    vault = await VaultServer.start(join(directory, 'vault'), tls)
  })
  after(async () => vault?.stop())

  it('init and verify trust the CA named by VAULT_CACERT', () => {
    const f = makeFixture()
    const env = {COMET_STORE: 'vault', VAULT_ADDR: vault.address, VAULT_TOKEN: vault.rootToken, VAULT_CACERT: caFile}
    assert.match(vault.address, /^https:/)
    const init = f.node.run(['init', '--manifest', f.manifest], env)
    assert.equal(init.status, 0, init.stderr)
    const verify = f.node.run(['verify', '--json'], env)
    assert.equal(verify.status, 0, verify.stderr)
    assert.equal(verify.json.source, 'store')
  })

  it('without VAULT_CACERT the server\'s certificate is refused, with a clear error and exit 2', () => {
    const f = makeFixture()
    const init = f.node.run(['init', '--manifest', f.manifest], {COMET_STORE: 'vault', VAULT_ADDR: vault.address, VAULT_TOKEN: vault.rootToken, VAULT_CACERT: ''})
    assert.equal(init.status, 2)
    assert.match(init.stderr, /Vault at https:\/\/127\.0\.0\.1:\d+ .*(certificate|self.signed)/i)
    assert.ok(!init.stderr.includes(vault.rootToken))
  })
})
