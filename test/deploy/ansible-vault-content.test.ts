import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {after, before, describe, it} from 'node:test'

import {runTool, recap, type ToolRun as Run, requireTool} from './deploy-files.js'
import {RUN_JS} from '../support/cli.js'
import {tempDir} from '../support/temp-dir.js'
import {VaultServer} from '../support/vault-server.js'

const run = (command: string, args: string[], env: NodeJS.ProcessEnv) => runTool(command, args, {env})
const REPO = fileURLToPath(new URL('../../../', import.meta.url))
const ROLES = join(REPO, 'deploy', 'ansible', 'roles')
const RENDER = join(REPO, 'deploy', 'vault', 'render-policy.sh')


/** The Python that runs Ansible (and so its modules on localhost) must have hvac for community.hashi_vault. */
function requireHvac(): void {
  const version = spawnSync('ansible', ['--version'], {encoding: 'utf8'}).stdout
  const python = /python version = .*\((\/[^)]+)\)\s*$/m.exec(version)?.[1] ?? 'python3'
  const result = spawnSync(python, ['-c', 'import hvac'], {encoding: 'utf8'})
  if (result.status !== 0) assert.fail(`${python} cannot import hvac: install the Debian package python3-hvac`)
  const collections = spawnSync('ansible-galaxy', ['collection', 'list', 'community.hashi_vault'], {encoding: 'utf8'}).stdout
  if (!/community\.hashi_vault\s+4\./.test(collections)) assert.fail(`community.hashi_vault 4.x not found (ansible-galaxy collection list): install the Debian package ansible`)
}




/**
 * YAML in flow style (JSON with tags), so that a command can carry Ansible's !unsafe tag: without it Ansible would
 * template `{{ }}` in the command, and Jinja would cut it at `{#`.
 */
function yaml(value: unknown): string {
  if (value instanceof Unsafe) return `!unsafe ${JSON.stringify(value.text)}`
  if (Array.isArray(value)) return `[${value.map(yaml).join(', ')}]`
  if (value !== null && typeof value === 'object') return `{${Object.entries(value).map(([key, item]) => `${JSON.stringify(key)}: ${yaml(item)}`).join(', ')}}`
  return JSON.stringify(value)
}

class Unsafe {
  constructor(readonly text: string) {}
}

describe('oort_vault_content writes what comet reads, against a real Vault', () => {
  const root = tempDir('comet-content-')
  const data = join(root, 'data')
  const stateDir = join(root, 'state')
  const log = join(root, 'fenced.log')
  const lock = join(data, '.~lock.ledger.ods#')
  const invoices = join(data, 'aaa-invoices.xlsx')
  const orders = join(data, 'orders.db')
  const later = join(data, 'zzz-later.docx')
  // A command Ansible would otherwise template ({{ }}) and Jinja would cut ({#): kept verbatim with !unsafe.
  const record = `echo "$COMET_SENTINEL $COMET_REASON" >> ${log}; : '{{ not a template }}' \${#COMET_NODE}`
  const shared = `echo "shared $COMET_SENTINEL" >> ${log}`
  let vault: VaultServer
  let adminToken: string
  let nodeToken: string
  let count = 0

  const web01 = (sentinels: unknown[]) => ({sentinels, fencing: {record: new Unsafe(record)}, default_fencing: 'record'})
  const initial = [{path: lock, create: true}, {path: invoices, create: true, fencing: 'record'}, {path: orders, create: false, fencing: 'shared_note'}]
  // The manifest's newer fields too: on_read (written only where not the default, freeze), a built-in procedure
  // (freeze: no fencing/<name> document), allow_readers.
  const changed = [{path: lock, create: true, on_read: 'allow'}, {path: orders, fencing: 'record', on_read: 'freeze'}, {path: later, create: true, fencing: 'freeze'}]
  const changedNode = {...web01(changed), allow_readers: ['/usr/bin/restic']}
  const db02Manifest = {sentinels: [{path: '/srv/db02/.~lock.dump.sql#', create: true}], fencing: {halt: 'systemctl poweroff'}, default_fencing: 'halt'}

  /** Runs the role on localhost with these variables: comet_nodes and comet_fencing as extra variables, db02 as a host of the group comets with comet_manifest. */
  async function applyRole(vars: Record<string, unknown>, options: {db02?: unknown} = {}): Promise<Run> {
    const n = ++count
    const inventory = join(root, `inventory-${n}.yml`)
    writeFileSync(
      inventory,
      `all:\n  hosts:\n    localhost:\n      ansible_connection: local\n      ansible_python_interpreter: "{{ ansible_playbook_python }}"\n` +
        `  children:\n    comets:\n      hosts:\n        db02:\n          comet_manifest: ${yaml(options.db02 ?? db02Manifest)}\n`,
    )
    const varsFile = join(root, `vars-${n}.yml`)
    writeFileSync(varsFile, yaml(vars) + '\n')
    const playbook = join(root, 'content.yml')
    writeFileSync(playbook, `- name: Vault content\n  hosts: localhost\n  gather_facts: false\n  roles:\n    - role: oort_vault_content\n`)
    return run('ansible-playbook', ['-i', inventory, '-e', `@${varsFile}`, playbook], {
      ...process.env,
      VAULT_ADDR: vault.address,
      VAULT_TOKEN: adminToken,
      ANSIBLE_ROLES_PATH: ROLES,
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_RETRY_FILES_ENABLED: '0',
      ANSIBLE_LOCAL_TEMP: join(root, 'ansible-local'),
      ANSIBLE_REMOTE_TEMP: join(root, 'ansible-remote'),
    })
  }

  function comet(args: string[], env: NodeJS.ProcessEnv = {}): {status: number | null; stdout: string; stderr: string; json: any} {
    const result = spawnSync(process.execPath, [RUN_JS, ...args], {
      env: {...process.env, COMET_STORE: 'vault', VAULT_ADDR: vault.address, VAULT_TOKEN: nodeToken, COMET_NODE: 'web01', COMET_STATE_DIR: stateDir, FORCE_COLOR: '0', NO_COLOR: '1', ...env},
      encoding: 'utf8',
      timeout: 60_000,
    })
    let json: unknown
    try {
      json = JSON.parse(result.stdout)
    } catch {}
    return {status: result.status, stdout: result.stdout, stderr: result.stderr, json}
  }

  async function version(path: string): Promise<number> {
    return (await vault.api('GET', `/v1/secret/metadata/${path}`)).body.data.current_version
  }

  before(async () => {
    requireTool('ansible-playbook', 'ansible')
    requireHvac()
    mkdirSync(data, {mode: 0o700})
    writeFileSync(orders, 'SQLite format 3\u0000 pretend database\n')
    vault = await VaultServer.start(join(root, 'vault'))
    const policy = (...args: string[]) => execFileSync('sh', [RENDER, ...args], {encoding: 'utf8'})
    await vault.api('PUT', '/v1/sys/policies/acl/comet-admin', {policy: policy('comet-admin')})
    await vault.api('PUT', '/v1/sys/policies/acl/comet-node-web01', {policy: policy('comet-node', 'web01')})
    adminToken = (await vault.api('POST', '/v1/auth/token/create', {policies: ['comet-admin'], ttl: '1h'})).body.auth.client_token
    nodeToken = (await vault.api('POST', '/v1/auth/token/create', {policies: ['comet-node-web01'], ttl: '1h'})).body.auth.client_token
  })
  after(async () => vault?.stop())

  it('writes comets/<node> and fencing/<name> in the seed layout, with a comet-admin token only', async () => {
    const result = await applyRole({comet_fencing: {shared_note: shared}, comet_nodes: {web01: web01(initial)}})
    assert.equal(result.status, 0, result.output)
    assert.deepEqual(await vault.get('comets/web01'), {
      [`web01:create:${lock}`]: '',
      [`web01:fencing_procedure:${lock}`]: 'record',
      [`web01:create:${invoices}`]: '',
      [`web01:fencing_procedure:${invoices}`]: 'record',
      [`web01:already_present:${orders}`]: '',
      [`web01:fencing_procedure:${orders}`]: 'shared_note',
    })
    assert.deepEqual(await vault.get('fencing/record'), {base64code: Buffer.from(record, 'utf8').toString('base64')})
    assert.deepEqual(await vault.get('fencing/shared_note'), {base64code: Buffer.from(shared, 'utf8').toString('base64')})
    // db02 came from its host's comet_manifest.
    assert.deepEqual(await vault.get('comets/db02'), {'db02:create:/srv/db02/.~lock.dump.sql#': '', 'db02:fencing_procedure:/srv/db02/.~lock.dump.sql#': 'halt'})
    assert.equal(Buffer.from((await vault.get('fencing/halt'))?.base64code, 'base64').toString(), 'systemctl poweroff')
  })

  it('comet init then comet verify --store vault (the node\'s own token) see exactly that: exit 0', async () => {
    const init = comet(['init', '--json'])
    assert.equal(init.status, 0, init.stderr + init.stdout)
    assert.deepEqual(
      init.json.sentinels.map((s: {path: string; action: string; procedure: string}) => [s.path, s.action, s.procedure]).sort(),
      [[invoices, 'created', 'record'], [lock, 'created', 'record'], [orders, 'recorded', 'shared_note']].sort(),
    )
    const comets = (await vault.get('comets/web01')) as Record<string, string>
    for (const key of [`web01:create:${lock}`, `web01:create:${invoices}`, `web01:already_present:${orders}`]) assert.match(comets[key], /^[0-9a-f]{64}$/, key)
    const verify = comet(['verify', '--json'])
    assert.equal(verify.status, 0, verify.stderr + verify.stdout)
    assert.equal(verify.json.source, 'store')
    assert.equal(verify.json.counts.intact, 3)
  })

  it('a second run changes nothing and keeps the recorded checksums; verify still exits 0', async () => {
    const before = await vault.get('comets/web01')
    const versions = [await version('comets/web01'), await version('fencing/record'), await version('fencing/shared_note')]
    const result = await applyRole({comet_fencing: {shared_note: shared}, comet_nodes: {web01: web01(initial)}})
    assert.equal(result.status, 0, result.output)
    assert.equal(recap(result.output).changed, 0, result.output)
    assert.deepEqual(await vault.get('comets/web01'), before)
    assert.deepEqual([await version('comets/web01'), await version('fencing/record'), await version('fencing/shared_note')], versions)
    assert.equal(comet(['verify']).status, 0)
  })

  it('a changed inventory replaces the sentinel list, keeps the checksums of what stays, and verify exits 0 after init', async () => {
    const recorded = (await vault.get('comets/web01')) as Record<string, string>
    const result = await applyRole({comet_fencing: {shared_note: shared}, comet_nodes: {web01: changedNode}})
    assert.equal(result.status, 0, result.output)
    assert.deepEqual(await vault.get('comets/web01'), {
      [`web01:create:${lock}`]: recorded[`web01:create:${lock}`],
      [`web01:fencing_procedure:${lock}`]: 'record',
      [`web01:on_read:${lock}`]: 'allow',
      [`web01:already_present:${orders}`]: recorded[`web01:already_present:${orders}`],
      [`web01:fencing_procedure:${orders}`]: 'record',
      [`web01:create:${later}`]: '',
      [`web01:fencing_procedure:${later}`]: 'freeze',
      'web01:allow_reader:/usr/bin/restic': '',
    })
    assert.equal(await vault.get('fencing/freeze'), undefined, 'a built-in procedure has no document')
    const init = comet(['init', '--json'])
    assert.equal(init.status, 0, init.stderr + init.stdout)
    assert.equal(comet(['verify']).status, 0)
    assert.ok(!existsSync(log), 'no procedure ran')
  })

  it('a node whose latest version was deleted in Vault is written again (check-and-set on the real current version)', async () => {
    const deletedAt = await version('comets/db02')
    await vault.api('DELETE', '/v1/secret/data/comets/db02')
    assert.equal(await vault.get('comets/db02'), undefined)
    const webVersion = await version('comets/web01')
    const result = await applyRole({comet_fencing: {shared_note: shared}, comet_nodes: {web01: changedNode}})
    assert.equal(result.status, 0, result.output)
    assert.equal(await version('comets/db02'), deletedAt + 1)
    assert.deepEqual(await vault.get('comets/db02'), {'db02:create:/srv/db02/.~lock.dump.sql#': '', 'db02:fencing_procedure:/srv/db02/.~lock.dump.sql#': 'halt'})
    assert.equal(await version('comets/web01'), webVersion, 'web01 was not rewritten')
  })

  it('refuses bad inventories before writing anything, naming the culprit', async () => {
    const good = [{path: lock, create: true}]
    const cases: Array<{name: string; vars: Record<string, unknown>; db02?: unknown; expect: RegExp}> = [
      {name: 'a relative path', vars: {comet_nodes: {web01: web01([{path: 'srv/data/x', create: true}])}}, expect: /sentinels\[0\]\.path \\?"srv\/data\/x\\?": must be absolute/},
      {name: 'a path with ..', vars: {comet_nodes: {web01: web01([{path: '/srv/../etc/passwd'}])}}, expect: /sentinels\[0\]\.path \\?"\/srv\/\.\.\/etc\/passwd\\?": must be absolute/},
      {name: 'a path not normalised', vars: {comet_nodes: {web01: web01([{path: '/srv//data/x'}])}}, expect: /sentinels\[0\]\.path .*must be absolute and normalised/},
      {name: 'a path Ansible would template', vars: {comet_nodes: {web01: web01([{path: new Unsafe('/srv/{{ x }}/y')}])}}, expect: /sentinels\[0\]\.path .*must be absolute/},
      {name: 'a directory', vars: {comet_nodes: {web01: web01([{path: '/srv/data/'}])}}, expect: /sentinels\[0\]\.path .*must be absolute and normalised/},
      {name: 'an unknown procedure', vars: {comet_nodes: {web01: web01([{path: lock, fencing: 'nope'}])}}, expect: /\\?"nope\\?" must name a procedure under fencing or comet_fencing, or a built-in one \(known: record, freeze, kill\)/},
      {name: 'a path listed twice', vars: {comet_nodes: {web01: web01([...good, ...good])}}, expect: /no path may be listed twice/},
      {name: 'create as a string', vars: {comet_nodes: {web01: web01([{path: lock, create: 'yes'}])}}, expect: /sentinels\[0\]: the fields are path \(a string\), create \(true or false\)/},
      {name: 'an unknown field', vars: {comet_nodes: {web01: web01([{path: lock, mode: 'create'}])}}, expect: /the fields are path .* and on_read/},
      {name: 'an unknown read policy', vars: {comet_nodes: {web01: web01([{path: lock, on_read: 'maybe'}])}}, expect: /on_read must be one of deny, freeze, fence, allow/},
      {name: 'a relative allowed reader', vars: {comet_nodes: {web01: {...web01(good), allow_readers: ['bin/restic']}}}, expect: /allow_readers\[0\]: must be the absolute/},
      {name: 'a bad node name', vars: {comet_nodes: {'web/01': web01(good)}}, expect: /node \\?"web\/01\\?": must be a name/},
      {name: 'no sentinel', vars: {comet_nodes: {web01: web01([])}}, expect: /with at least one sentinel/},
      {name: 'a default procedure that is not defined', vars: {comet_nodes: {web01: {...web01(good), default_fencing: 'nope'}}}, expect: /default_fencing must name a procedure/},
      {name: 'a procedure with two commands', vars: {comet_fencing: {record: 'true'}, comet_nodes: {web01: web01(good)}}, expect: /defined with different commands.*record/},
      {name: 'an empty command', vars: {comet_nodes: {web01: {sentinels: good, fencing: {record: ' '}}}}, expect: /fencing\.\\?"record\\?": .*non-empty shell command/},
      {name: 'a node defined twice', vars: {comet_nodes: {web01: web01(good), db02: {sentinels: [{path: '/x/y', fencing: 'halt'}], fencing: {halt: 'systemctl poweroff'}}}}, expect: /a node is defined twice/},
    ]
    const snapshot = async () => JSON.stringify([await vault.get('comets/web01'), await vault.get('comets/db02'), await vault.get('fencing/record'), await version('comets/web01')])
    const before = await snapshot()
    for (const bad of cases) {
      const result = await applyRole(bad.vars, {db02: bad.db02})
      assert.notEqual(result.status, 0, `${bad.name}: the role succeeded\n${result.output}`)
      assert.match(result.output, bad.expect, `${bad.name}\n${result.output}`)
      assert.doesNotMatch(result.output, /TASK \[oort_vault_content : Write/, `${bad.name}: a write task ran`)
    }
    assert.equal(await snapshot(), before)
  })

  it('comet_agent (bootstrap): the node\'s policy and AppRole, role_id and secret_id 0600, comet.env 0600, and comet verify logs in with them', async () => {
    const etc = join(root, 'etc-comet')
    const playbook = join(root, 'credentials.yml')
    writeFileSync(
      playbook,
      `- name: The agent's credentials\n  hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: The role's credentials tasks\n      ansible.builtin.include_role:\n        name: comet_agent\n        tasks_from: credentials.yml\n`,
    )
    const inventory = join(root, 'inventory-agent.yml')
    writeFileSync(inventory, `all:\n  hosts:\n    localhost:\n      ansible_connection: local\n      ansible_python_interpreter: "{{ ansible_playbook_python }}"\n`)
    const varsFile = join(root, 'vars-agent.json')
    writeFileSync(
      varsFile,
      JSON.stringify({
        // timer: its handler does not restart a resident service, which this machine has no systemd for.
        comet_agent_mode: 'timer',
        comet_agent_node: 'web01',
        comet_agent_vault_addr: vault.address,
        comet_agent_vault_bootstrap: true,
        comet_agent_vault_admin_url: vault.address,
        comet_agent_vault_admin_token: vault.rootToken,
        comet_agent_config_dir: etc,
        comet_agent_env_file: join(etc, 'comet.env'),
        comet_agent_credentials_owner: 'root',
        comet_agent_policy_templates: join(REPO, 'deploy', 'vault'),
      }),
    )
    const apply = () =>
      run('ansible-playbook', ['-i', inventory, '-e', `@${varsFile}`, playbook], {
        ...process.env,
        ANSIBLE_ROLES_PATH: ROLES,
        ANSIBLE_NOCOLOR: '1',
        ANSIBLE_LOCAL_TEMP: join(root, 'ansible-local'),
        ANSIBLE_REMOTE_TEMP: join(root, 'ansible-remote'),
      })
    const first = await apply()
    assert.equal(first.status, 0, first.output)
    for (const file of ['role_id', 'secret_id', 'comet.env']) {
      const stats = statSync(join(etc, file))
      assert.equal(stats.mode & 0o777, 0o600, file)
      assert.equal(stats.uid, 0, file)
    }
    const secretId = readFileSync(join(etc, 'secret_id'), 'utf8').trim()
    assert.match(secretId, /^[0-9a-f-]{36}$/)
    assert.ok(!first.output.includes(secretId), 'the secret_id must not appear in Ansible\'s output')
    const policy = (await vault.api('GET', '/v1/sys/policies/acl/comet-node-web01')).body.data.policy
    assert.equal(policy, execFileSync('sh', [RENDER, 'comet-node', 'web01'], {encoding: 'utf8'}))
    const role = (await vault.api('GET', '/v1/auth/approle/role/comet-web01')).body.data
    assert.deepEqual(role.token_policies, ['comet-node-web01'])

    // comet, with exactly what comet.env says (no token: the AppRole files).
    const env: NodeJS.ProcessEnv = {}
    for (const line of readFileSync(join(etc, 'comet.env'), 'utf8').split('\n')) {
      const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line)
      if (match) env[match[1]] = match[2]
    }
    assert.deepEqual(Object.keys(env).sort(), ['COMET_NODE', 'COMET_STORE', 'COMET_VAULT_MOUNT', 'COMET_VAULT_ROLE_ID_FILE', 'COMET_VAULT_SECRET_ID_FILE', 'VAULT_ADDR'])
    const verify = comet(['verify', '--json'], {...env, VAULT_TOKEN: ''})
    assert.equal(verify.status, 0, verify.stderr + verify.stdout)
    assert.equal(verify.json.source, 'store')

    // Again: nothing changes, and the node keeps its secret_id.
    const second = await apply()
    assert.equal(second.status, 0, second.output)
    assert.equal(recap(second.output).changed, 0, second.output)
    assert.equal(readFileSync(join(etc, 'secret_id'), 'utf8').trim(), secretId)
  })
})
