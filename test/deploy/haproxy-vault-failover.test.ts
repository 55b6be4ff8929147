import assert from 'node:assert/strict'
import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {chmodSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {after, before, describe, it} from 'node:test'

import {requireTool} from './deploy-files.js'
import {RUN_JS} from '../support/cli.js'
import {tempDir} from '../support/temp-dir.js'
import {freePort, readVaultLog, spawnVaultServer} from '../support/vault-server.js'

const REPO = fileURLToPath(new URL('../../../', import.meta.url))
const ROLES = join(REPO, 'deploy', 'ansible', 'roles')
const RENDER = join(REPO, 'deploy', 'vault', 'render-policy.sh')


interface Run {
  status: number | null
  stdout: string
  stderr: string
}

/** Asynchronous, so that the HAProxy and Vault children keep having their output read meanwhile. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {env, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000)
    child.on('error', reject)
    child.on('close', (status) => {
      clearTimeout(timer)
      resolve({status, stdout, stderr})
    })
  })
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, detail: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${detail()}`)
    await sleep(200)
  }
}

/** One node of a Vault raft cluster on loopback, with its own API and cluster ports; its config.hcl comes from the oort_panel role. */
class RaftNode {
  process?: ChildProcess

  constructor(
    readonly id: string,
    readonly directory: string,
    readonly port: number,
    readonly clusterPort: number,
  ) {}

  get address(): string {
    return `http://127.0.0.1:${this.port}`
  }

  get log(): string {
    return readVaultLog(join(this.directory, 'vault.log'))
  }

  start(): void {
    this.process = spawnVaultServer(join(this.directory, 'config.hcl'), join(this.directory, 'vault.log'))
  }

  async stop(): Promise<void> {
    const child = this.process
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  }

  /** /v1/sys/health's status code: 200 active, 429 standby, 501 not initialised, 503 sealed. */
  async health(): Promise<number> {
    return (await fetch(`${this.address}/v1/sys/health`, {signal: AbortSignal.timeout(2000)})).status
  }

  async api(method: string, path: string, body?: unknown, token?: string): Promise<any> {
    const response = await fetch(`${this.address}${path}`, {
      method,
      headers: {...(token ? {'X-Vault-Token': token} : {}), 'Content-Type': 'application/json'},
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    })
    const text = await response.text()
    if (response.status >= 400) throw new Error(`${method} ${path} on ${this.id}: ${response.status} ${text}`)
    return text ? JSON.parse(text) : undefined
  }
}

/** HAProxy's view of the vault backend: server name -> UP / DOWN / ..., from the stats page's CSV. */
async function backendStatus(statsPort: number): Promise<Record<string, string>> {
  const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`, {signal: AbortSignal.timeout(2000)})).text()
  const [header, ...rows] = csv.replace(/^# /, '').trim().split('\n')
  const columns = header.split(',')
  const status: Record<string, string> = {}
  for (const row of rows) {
    const cells = row.split(',')
    const record = Object.fromEntries(columns.map((column, index) => [column, cells[index]]))
    if (record.pxname === 'vault' && record.svname !== 'BACKEND' && record.svname !== 'FRONTEND') status[record.svname] = record.status
  }
  return status
}

describe('HAProxy from the oort_panel role in front of a three-node Vault raft cluster', () => {
  const root = tempDir('comet-failover-')
  const data = join(root, 'data')
  const stateDir = join(root, 'state')
  const nodes: RaftNode[] = []
  let haproxy: ChildProcess | undefined
  let haproxyLog = ''
  let frontendPort = 0
  let statsPort = 0
  let rootToken = ''
  let unsealKey = ''
  let nodeToken = ''

  const ansibleEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    ...process.env,
    PATH: `${join(root, 'bin')}:${process.env.PATH}`,
    ANSIBLE_ROLES_PATH: ROLES,
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_RETRY_FILES_ENABLED: '0',
    ANSIBLE_LOCAL_TEMP: join(root, 'ansible-local'),
    ANSIBLE_REMOTE_TEMP: join(root, 'ansible-remote'),
    ...extra,
  })

  function comet(args: string[]): Promise<Run> {
    return run(process.execPath, [RUN_JS, ...args], {
      ...process.env,
      COMET_STORE: 'vault',
      VAULT_ADDR: `http://127.0.0.1:${frontendPort}`,
      VAULT_TOKEN: nodeToken,
      COMET_NODE: 'web01',
      COMET_STATE_DIR: stateDir,
      NO_COLOR: '1',
    })
  }

  async function active(): Promise<RaftNode | undefined> {
    for (const node of nodes) if ((await node.health().catch(() => 0)) === 200) return node
    return undefined
  }

  const logs = () => `haproxy:\n${haproxyLog.slice(-3000)}\n${nodes.map((node) => `${node.id}:\n${node.log.slice(-2000)}`).join('\n')}`

  before(async () => {
    requireTool('haproxy', 'haproxy')
    requireTool('ansible-playbook', 'ansible')
    mkdirSync(data, {mode: 0o700})
    mkdirSync(join(root, 'bin'))
    // The role's handlers reload haproxy and vault through systemctl: a stand-in, since these run in the foreground.
    writeFileSync(join(root, 'bin', 'systemctl'), `#!/bin/sh\n[ "$1" = show ] && printf 'Id=%s.service\\nLoadState=loaded\\nActiveState=active\\n' "$3"\nexit 0\n`)
    chmodSync(join(root, 'bin', 'systemctl'), 0o755)

    for (const id of ['oort1', 'oort2', 'oort3']) nodes.push(new RaftNode(id, join(root, id), await freePort(), await freePort()))
    for (const node of nodes) mkdirSync(join(node.directory, 'raft'), {recursive: true})
    frontendPort = await freePort()
    statsPort = await freePort()

    // Every configuration comes from the oort_panel role, rendered by Ansible as on the panel hosts: each Vault
    // node's vault.hcl (raft, retry_join to the others) and HAProxy's haproxy.cfg, from one list of nodes.
    const backends = nodes.map((node) => ({name: node.id, address: '127.0.0.1', port: node.port}))
    writeFileSync(
      join(root, 'panel-vars.json'),
      JSON.stringify({
        oort_panel_vault_nodes: backends,
        oort_panel_vault_tls: false,
        oort_panel_vault_address: '127.0.0.1',
        oort_panel_vault_listen_address: '127.0.0.1',
        oort_panel_vault_group: 'root',
        // The tightest raft timings, so that a new leader is elected in a second or two.
        oort_panel_vault_raft_performance_multiplier: 1,
        test_nodes: nodes.map((node) => ({name: node.id, port: node.port, cluster_port: node.clusterPort, dir: node.directory})),
        oort_panel_haproxy_config: join(root, 'haproxy.cfg'),
        oort_panel_haproxy_backends: backends,
        oort_panel_haproxy_bind_address: '127.0.0.1',
        oort_panel_haproxy_port: frontendPort,
        oort_panel_haproxy_stats_bind: `127.0.0.1:${statsPort}`,
        oort_panel_haproxy_stats_socket: join(root, 'admin.sock'),
        oort_panel_haproxy_chroot: '',
        oort_panel_haproxy_user: '',
        oort_panel_haproxy_group: '',
        oort_panel_haproxy_check_interval: '500ms',
      }),
    )
    writeFileSync(join(root, 'inventory.yml'), `all:\n  hosts:\n    localhost:\n      ansible_connection: local\n      ansible_python_interpreter: "{{ ansible_playbook_python }}"\n`)
    writeFileSync(
      join(root, 'panel.yml'),
      `- name: OORT panel configuration
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The role's Vault configuration, once per node
      ansible.builtin.include_role:
        name: oort_panel
        tasks_from: vault-config.yml
      vars:
        oort_panel_vault_config: "{{ item.dir }}/config.hcl"
        oort_panel_vault_node_id: "{{ item.name }}"
        oort_panel_vault_port: "{{ item.port }}"
        oort_panel_vault_cluster_port: "{{ item.cluster_port }}"
        oort_panel_vault_data_dir: "{{ item.dir }}/raft"
      loop: "{{ test_nodes }}"
    - name: The role's HAProxy configuration
      ansible.builtin.include_role:
        name: oort_panel
        tasks_from: haproxy-config.yml
`,
    )
    const rendered = await run('ansible-playbook', ['-i', join(root, 'inventory.yml'), '-e', `@${join(root, 'panel-vars.json')}`, join(root, 'panel.yml')], ansibleEnv())
    assert.equal(rendered.status, 0, rendered.stdout + rendered.stderr)
    assert.match(readFileSync(join(nodes[1].directory, 'config.hcl'), 'utf8'), new RegExp(`retry_join \\{\\s+leader_api_addr = "http://127\\.0\\.0\\.1:${nodes[0].port}"`))

    for (const node of nodes) node.start()
    await until('the three Vault processes to listen', async () => ((await Promise.all(nodes.map((node) => node.health()))).every((code) => code === 501) ? true : undefined), 60_000, logs)

    // The operator's part: init one node, unseal it; the others join it (retry_join) and are unsealed with the same key.
    const init = await nodes[0].api('PUT', '/v1/sys/init', {secret_shares: 1, secret_threshold: 1})
    unsealKey = init.keys[0]
    rootToken = init.root_token
    await nodes[0].api('PUT', '/v1/sys/unseal', {key: unsealKey})
    await until('oort1 to become active', async () => ((await nodes[0].health()) === 200 ? true : undefined), 60_000, logs)
    // Autopilot makes a joined node a voter only once it has been stable for server_stabilization_time (10 s by
    // default); until then a cluster that loses its leader has no quorum. Shorten it, then wait for three voters.
    await nodes[0].api('POST', '/v1/sys/storage/raft/autopilot/configuration', {server_stabilization_time: '1s', cleanup_dead_servers: false}, rootToken)
    for (const node of nodes.slice(1)) {
      // The unseal key is accepted once the node has joined (it answers "not initialized" until then).
      await until(`${node.id} to join and unseal`, async () => {
        const status = await node.api('PUT', '/v1/sys/unseal', {key: unsealKey}).catch(() => undefined)
        return status && status.sealed === false ? true : undefined
      }, 60_000, logs)
      await until(`${node.id} to be a standby`, async () => ((await node.health()) === 429 ? true : undefined), 60_000, logs)
    }
    await until('three raft voters', async () => {
      const servers: Array<{node_id: string; voter: boolean}> = (await nodes[0].api('GET', '/v1/sys/storage/raft/configuration', undefined, rootToken)).data.config.servers
      return servers.length === 3 && servers.every((server) => server.voter) ? true : undefined
    }, 60_000, logs)
    await nodes[0].api('POST', '/v1/sys/mounts/secret', {type: 'kv', options: {version: '2'}}, rootToken)

    const child = spawn('haproxy', ['-f', join(root, 'haproxy.cfg'), '-db'], {stdio: ['ignore', 'pipe', 'pipe']})
    child.stdout.on('data', (chunk) => (haproxyLog += chunk))
    child.stderr.on('data', (chunk) => (haproxyLog += chunk))
    haproxy = child
    await until('HAProxy to mark only the active node up', async () => {
      const status = await backendStatus(statsPort)
      return status.oort1 === 'UP' && status.oort2 === 'DOWN' && status.oort3 === 'DOWN' ? true : undefined
    }, 30_000, logs)
  })

  after(async () => {
    if (haproxy && haproxy.exitCode === null && haproxy.signalCode === null) {
      const exited = new Promise((resolve) => haproxy!.once('exit', resolve))
      haproxy.kill('SIGTERM')
      await exited
    }
    await Promise.all(nodes.map((node) => node.stop()))
  })

  it('only the active node is up: standbys answer 429 on /v1/sys/health and are down for HAProxy', async () => {
    assert.deepEqual(await Promise.all(nodes.map((node) => node.health())), [200, 429, 429])
    assert.deepEqual(await backendStatus(statsPort), {oort1: 'UP', oort2: 'DOWN', oort3: 'DOWN'})
  })

  it('the content role and comet init write through HAProxy; comet verify reads through it (exit 0), and HAProxy logs each request', async () => {
    const policy = (...args: string[]) => execFileSync('sh', [RENDER, ...args], {encoding: 'utf8'})
    const frontend = `http://127.0.0.1:${frontendPort}`
    for (const [name, text] of [['comet-admin', policy('comet-admin')], ['comet-node-web01', policy('comet-node', 'web01')]])
      await nodes[0].api('PUT', `/v1/sys/policies/acl/${name}`, {policy: text}, rootToken)
    const adminToken = (await nodes[0].api('POST', '/v1/auth/token/create', {policies: ['comet-admin'], ttl: '1h'}, rootToken)).auth.client_token
    nodeToken = (await nodes[0].api('POST', '/v1/auth/token/create', {policies: ['comet-node-web01'], ttl: '1h'}, rootToken)).auth.client_token

    writeFileSync(join(data, 'orders.db'), 'pretend database\n')
    writeFileSync(
      join(root, 'content-vars.json'),
      JSON.stringify({
        comet_nodes: {
          web01: {
            sentinels: [{path: join(data, '.~lock.ledger.ods#'), create: true}, {path: join(data, 'orders.db')}],
            fencing: {record: `echo "$COMET_SENTINEL" >> ${join(root, 'fenced.log')}`},
            default_fencing: 'record',
          },
        },
      }),
    )
    writeFileSync(join(root, 'content.yml'), `- name: Vault content\n  hosts: localhost\n  gather_facts: false\n  roles:\n    - role: oort_vault_content\n`)
    const content = await run('ansible-playbook', ['-i', join(root, 'inventory.yml'), '-e', `@${join(root, 'content-vars.json')}`, join(root, 'content.yml')], ansibleEnv({VAULT_ADDR: frontend, VAULT_TOKEN: adminToken}))
    assert.equal(content.status, 0, content.stdout + content.stderr)

    const init = await comet(['init', '--json'])
    assert.equal(init.status, 0, init.stderr + init.stdout)
    const verify = await comet(['verify', '--json'])
    assert.equal(verify.status, 0, verify.stderr + verify.stdout)
    assert.equal(JSON.parse(verify.stdout).source, 'store')
    // httplog lines on stdout (the journal, under systemd): frontend, backend/server, status, request.
    await until('HAProxy to log the request', async () => (/vault vault\/oort1 .* 200 .*"GET \/v1\/secret\/data\/comets\/web01 HTTP\/1\.1"/.test(haproxyLog) ? true : undefined), 5000, logs)
  })

  it('the active node stops: a standby takes over, HAProxy follows it, and comet verify through HAProxy keeps exiting 0', async () => {
    const previous = (await active()) as RaftNode
    assert.ok(previous, 'an active node')
    await previous.stop()

    // During the election, verify may have to fall back on its local cache, but never fails.
    const during = await comet(['verify', '--json'])
    assert.equal(during.status, 0, during.stderr + during.stdout)

    const next = await until('a standby to become active', active, 60_000, logs)
    assert.notEqual(next.id, previous.id)
    await until(`HAProxy to mark ${next.id} up and only it`, async () => {
      const status = await backendStatus(statsPort)
      return Object.entries(status).every(([name, state]) => (name === next.id ? state === 'UP' : state !== 'UP')) ? true : undefined
    }, 30_000, logs)

    const after = await comet(['verify', '--json'])
    assert.equal(after.status, 0, after.stderr + after.stdout)
    assert.equal(JSON.parse(after.stdout).source, 'store', after.stdout)
    assert.equal(JSON.parse(after.stdout).counts.intact, 2)
    // The answer came from the new active node, through HAProxy.
    await until('HAProxy to log a request served by the new active node', async () => (new RegExp(`vault vault/${next.id} .* 200 `).test(haproxyLog) ? true : undefined), 5000, logs)
  })
})
