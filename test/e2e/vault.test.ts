import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {appendFileSync, chmodSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {after, before, describe, it} from 'node:test'

import {makeFixture, waitFor, type Fixture} from '../support/fixture.js'
import {tempDir} from '../support/temp-dir.js'
import {VaultServer} from '../support/vault-server.js'

const RENDER = fileURLToPath(new URL('../../../deploy/vault/render-policy.sh', import.meta.url))

function policy(...args: string[]): string {
  return execFileSync('sh', [RENDER, ...args], {encoding: 'utf8'})
}

describe('comet with --store vault, against a real Vault server', () => {
  // Made here, not in before(): tempDir() registers its clean-up with after(), which belongs to the suite.
  const vaultDirectory = tempDir('comet-vault-')
  let vault: VaultServer
  let nodeToken: string
  let exporterToken: string

  const vaultEnv = (token: string) => ({COMET_STORE: 'vault', VAULT_ADDR: vault.address, VAULT_TOKEN: token})

  before(async () => {
    vault = await VaultServer.start(vaultDirectory)
    await vault.api('PUT', '/v1/sys/policies/acl/comet-node-web01', {policy: policy('comet-node', 'web01')})
    await vault.api('PUT', '/v1/sys/policies/acl/comet-exporter', {policy: policy('comet-exporter')})
    nodeToken = (await vault.api('POST', '/v1/auth/token/create', {policies: ['comet-node-web01'], ttl: '1h'})).body.auth.client_token
    exporterToken = (await vault.api('POST', '/v1/auth/token/create', {policies: ['comet-exporter'], ttl: '1h'})).body.auth.client_token
  })
  after(async () => vault?.stop())

  async function initialised(): Promise<Fixture> {
    const f = makeFixture()
    // Loading a manifest writes fencing/: an operator's (here: root's) action, not the node's.
    const init = f.node.run(['init', '--manifest', f.manifest, '--json'], vaultEnv(vault.rootToken))
    assert.equal(init.status, 0, init.stderr + init.stdout)
    return f
  }

  it('init writes the seed layout into Vault; verify with the node\'s own token exits 0; tampering fences and Vault says fenced', async () => {
    const f = await initialised()
    const comets = await vault.get('comets/web01')
    assert.match(comets?.[`web01:create:${f.planted[0]}`], /^[0-9a-f]{64}$/)
    assert.match(comets?.[`web01:already_present:${f.existing}`], /^[0-9a-f]{64}$/)
    assert.equal(comets?.[`web01:fencing_procedure:${f.existing}`], 'record')
    const fencing = await vault.get('fencing/record')
    assert.match(Buffer.from(fencing?.base64code, 'base64').toString(), /COMET_SENTINEL/)

    assert.equal(f.node.run(['verify'], vaultEnv(nodeToken)).status, 0)
    appendFileSync(f.planted[0], 'encrypted')
    const verify = f.node.run(['verify', '--json'], vaultEnv(nodeToken))
    assert.equal(verify.status, 1, verify.stderr)
    assert.equal(f.fenceRuns().length, 1)
    const status = await vault.get('comet-status/web01')
    assert.equal(status?.state, 'fenced')
    assert.equal(status?.incidents.at(-1).sentinels[0].path, f.planted[0])
  })

  it('a node naming 120 procedures is initialised and verified (each read from fencing/, a bounded number at a time)', async () => {
    const f = makeFixture('many01')
    const count = 120
    let manifest = 'node: many01\nsentinels:\n'
    for (let i = 0; i < count; i++) manifest += `  - path: ${join(f.node.data, `s${i}.docx`)}\n    create: true\n    fencing: p${i}\n`
    manifest += 'fencing:\n'
    for (let i = 0; i < count; i++) manifest += `  p${i}: echo ${i} >> ${f.fenceLog}\n`
    const init = f.node.run(['init', '--manifest', f.node.writeManifest(manifest, 'many.yaml'), '--json'], vaultEnv(vault.rootToken))
    assert.equal(init.status, 0, init.stderr)
    assert.equal(init.json.sentinels.filter((s: {action: string}) => s.action === 'created').length, count)
    assert.equal(Buffer.from((await vault.get(`fencing/p${count - 1}`))?.base64code, 'base64').toString(), `echo ${count - 1} >> ${f.fenceLog}`)
    appendFileSync(join(f.node.data, `s${count - 1}.docx`), 'x')
    const verify = f.node.run(['verify', '--json'], vaultEnv(vault.rootToken))
    assert.equal(verify.status, 1, verify.stderr)
    assert.deepEqual(f.fenceRuns(), [`${count - 1}`])
  })

  it('a node\'s token reaches only its own entries: no other node, no write to fencing/', async () => {
    await vault.put('comets/db02', {'db02:create:/x': '', 'db02:fencing_procedure:/x': 'record'})
    assert.equal((await vault.api('GET', '/v1/secret/data/comets/db02', undefined, nodeToken)).status, 403)
    assert.equal((await vault.api('POST', '/v1/secret/data/fencing/evil', {data: {base64code: 'aWQ='}}, nodeToken)).status, 403)
    assert.equal((await vault.api('POST', '/v1/secret/data/comet-status/db02', {data: {state: 'ok'}}, nodeToken)).status, 403)
    assert.equal((await vault.api('GET', '/v1/secret/data/fencing/record', undefined, nodeToken)).status, 200)
    // The exporter reads everything and writes nothing.
    assert.equal((await vault.api('LIST', '/v1/secret/metadata/comets', undefined, exporterToken)).status, 200)
    assert.equal((await vault.api('POST', '/v1/secret/data/comets/db02', {data: {}}, exporterToken)).status, 403)
    // And comet, run with a node's token for another node, says so and exits 2.
    const f = makeFixture('db02')
    const denied = f.node.run(['verify'], vaultEnv(nodeToken))
    assert.equal(denied.status, 2)
    assert.match(denied.stderr, /403 permission denied/)
    assert.ok(!denied.stderr.includes(nodeToken), 'the token must never appear in an error')
  })

  it('with Vault down, watch fences at once from the local cache, and the report lands once Vault is back', async () => {
    const f = await initialised()
    const watch = f.node.spawn(['watch', '--interval', '3600', '--no-fanotify'], vaultEnv(nodeToken))
    let log = ''
    watch.stderr!.on('data', (chunk) => (log += chunk))
    try {
      await waitFor('the agent to watch', () => log.includes('watching'))
      await vault.stop()
      appendFileSync(f.planted[1], 'encrypted')
      await waitFor('the procedure to run with Vault down', () => f.fenceRuns().length > 0, 5000)
      await waitFor('the agent to spool the report', () => /report\(s\) spooled/.test(log))
      await vault.restart()
      await waitFor(
        'the spooled report to reach Vault',
        () => log.includes('spool delivered'),
        40_000,
      )
      const status = await vault.get('comet-status/web01')
      assert.ok(status?.incidents.some((incident: {sentinels: Array<{path: string}>}) => incident.sentinels.some((s) => s.path === f.planted[1])), JSON.stringify(status))
      assert.equal(status?.state, 'fenced')
    } finally {
      watch.kill('SIGTERM')
      if (vault && !(await vault.api('GET', '/v1/sys/health', undefined, '').catch(() => undefined))) await vault.restart()
    }
  })

  it('with Vault down, verify works from the local cache and says so; init refuses with exit 2', async () => {
    const f = await initialised()
    await vault.stop()
    try {
      const verify = f.node.run(['verify', '--json'], vaultEnv(nodeToken))
      assert.equal(verify.status, 0, verify.stderr)
      assert.equal(verify.json.source, 'cache')
      assert.match(verify.json.detail, /store unreachable/)
      appendFileSync(f.existing, 'x')
      assert.equal(f.node.run(['verify'], vaultEnv(nodeToken)).status, 1)
      assert.equal(f.fenceRuns().length, 1)
      const init = f.node.run(['init'], vaultEnv(nodeToken))
      assert.equal(init.status, 2)
      assert.match(init.stderr, /unreachable \(ECONNREFUSED\)/)
    } finally {
      await vault.restart()
    }
  })

  it('bad data in Vault gets a clear error that names the key', async () => {
    const f = await initialised()
    const comets = (await vault.get('comets/web01')) as Record<string, string>
    const cases: Array<{name: string; apply: () => Promise<void>; message: RegExp}> = [
      {name: 'code that is not base64', apply: () => vault.put('fencing/record', {base64code: 'not base64!!'}), message: /fencing\/record: base64code is not valid base64/},
      {name: 'an unknown procedure', apply: () => vault.put('comets/web01', {...comets, [`web01:fencing_procedure:${f.existing}`]: 'missing_proc'}), message: /fencing\/missing_proc: is absent, but comets\/web01 names it/},
      {name: 'a malformed key', apply: () => vault.put('comets/web01', {...comets, 'web01-no-colons': 'x'}), message: /comets\/web01 key "web01-no-colons": is not of the form/},
      {name: 'a relative path', apply: () => vault.put('comets/web01', {...comets, 'web01:create:srv/x': ''}), message: /comets\/web01 key "web01:create:srv\/x": the path must be an absolute path/},
    ]
    const fencing = await vault.get('fencing/record')
    for (const bad of cases) {
      await bad.apply()
      const verify = f.node.run(['verify'], vaultEnv(nodeToken))
      assert.equal(verify.status, 2, bad.name)
      assert.match(verify.stderr, bad.message, bad.name)
      await vault.put('comets/web01', comets)
      await vault.put('fencing/record', fencing as Record<string, unknown>)
    }
    assert.equal(f.fenceRuns().length, 0)
  })

  it('AppRole: credentials read from owner-only files; a credential readable by others is refused', async () => {
    const f = await initialised()
    await vault.api('POST', '/v1/sys/auth/approle', {type: 'approle'}).catch(() => undefined)
    await vault.api('POST', '/v1/auth/approle/role/comet-web01', {token_policies: ['comet-node-web01'], token_ttl: '10m', token_max_ttl: '1h'})
    const roleId = (await vault.api('GET', '/v1/auth/approle/role/comet-web01/role-id')).body.data.role_id
    const secretId = (await vault.api('POST', '/v1/auth/approle/role/comet-web01/secret-id', {})).body.data.secret_id
    const roleFile = join(f.node.root, 'role_id')
    const secretFile = join(f.node.root, 'secret_id')
    writeFileSync(roleFile, roleId + '\n', {mode: 0o600})
    writeFileSync(secretFile, secretId + '\n', {mode: 0o600})
    const env = {COMET_STORE: 'vault', VAULT_ADDR: vault.address, VAULT_TOKEN: '', COMET_VAULT_ROLE_ID_FILE: roleFile, COMET_VAULT_SECRET_ID_FILE: secretFile}
    const verify = f.node.run(['verify'], env)
    assert.equal(verify.status, 0, verify.stderr)
    chmodSync(secretFile, 0o644)
    const refused = f.node.run(['verify'], env)
    assert.equal(refused.status, 2)
    assert.match(refused.stderr, /secret_id is readable by other users/)
    assert.ok(!refused.stderr.includes(secretId))
  })

  it('AppRole: a long-running agent keeps reporting after its token\'s TTL has passed several times', async () => {
    const f = await initialised()
    await vault.api('POST', '/v1/sys/auth/approle', {type: 'approle'}).catch(() => undefined)
    await vault.api('POST', '/v1/auth/approle/role/comet-short', {token_policies: ['comet-node-web01'], token_ttl: '3s', token_max_ttl: '1h'})
    const roleFile = join(f.node.root, 'role_id')
    const secretFile = join(f.node.root, 'secret_id')
    writeFileSync(roleFile, (await vault.api('GET', '/v1/auth/approle/role/comet-short/role-id')).body.data.role_id, {mode: 0o600})
    writeFileSync(secretFile, (await vault.api('POST', '/v1/auth/approle/role/comet-short/secret-id', {})).body.data.secret_id, {mode: 0o600})
    const env = {COMET_STORE: 'vault', VAULT_ADDR: vault.address, VAULT_TOKEN: '', COMET_VAULT_ROLE_ID_FILE: roleFile, COMET_VAULT_SECRET_ID_FILE: secretFile}
    const watch = f.node.spawn(['watch', '--interval', '1', '--no-fanotify'], env)
    let log = ''
    watch.stderr!.on('data', (chunk) => (log += chunk))
    try {
      await waitFor('the agent to watch', () => log.includes('watching'), 20_000)
      const watching = Date.now()
      await new Promise((resolve) => setTimeout(resolve, 8000))
      appendFileSync(f.planted[0], 'encrypted')
      await waitFor('the incident to reach Vault after the token TTL passed', () => f.fenceRuns().length > 0, 10_000)
      const deadline = Date.now() + 10_000
      let status = await vault.get('comet-status/web01')
      while (Date.now() < deadline && !status?.incidents?.some((incident: {sentinels: Array<{path: string}>}) => incident.sentinels.some((s) => s.path === f.planted[0]))) {
        await new Promise((resolve) => setTimeout(resolve, 200))
        status = await vault.get('comet-status/web01')
      }
      assert.ok(status?.incidents?.some((incident: {sentinels: Array<{path: string}>}) => incident.sentinels.some((s) => s.path === f.planted[0])), log)
      assert.ok(Date.parse(status?.heartbeatAt) > watching + 6000, `heartbeats went on past two token TTLs (last: ${status?.heartbeatAt})`)
      assert.doesNotMatch(log, /report not delivered/)
    } finally {
      watch.kill('SIGTERM')
      await new Promise((resolve) => watch.once('exit', resolve))
    }
  })
})
