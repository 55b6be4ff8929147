import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {before, describe, it} from 'node:test'

import {runTool, recap, type ToolRun as Run, requireTool} from './deploy-files.js'
import {tempDir} from '../support/temp-dir.js'

const run = runTool
const REPO = fileURLToPath(new URL('../../../', import.meta.url))
const ROLES = join(REPO, 'deploy', 'ansible', 'roles')




/**
 * Runs the oort_panel role's HAProxy tasks (tasks_from: haproxy-config.yml) on localhost, as site.yml runs them
 * on the panel, with `vars` as extra variables. `systemctl` is a stand-in that logs its arguments, so that the
 * role's real handler runs and the test sees which service it reloads.
 */
class HaproxyRole {
  readonly config: string
  readonly systemctlLog: string
  private readonly playbook: string
  private readonly inventory: string
  private readonly bin: string
  private count = 0

  constructor(readonly root: string) {
    this.config = join(root, 'haproxy.cfg')
    this.systemctlLog = join(root, 'systemctl.log')
    this.bin = join(root, 'bin')
    mkdirSync(this.bin)
    const systemctl = join(this.bin, 'systemctl')
    writeFileSync(
      systemctl,
      `#!/bin/sh
echo "$*" >> '${this.systemctlLog}'
if [ "$1" = show ]; then
  printf 'Id=%s.service\\nNames=%s.service\\nLoadState=loaded\\nActiveState=active\\nSubState=running\\nUnitFileState=enabled\\nMainPID=1\\n' "$3" "$3"
fi
exit 0
`,
    )
    chmodSync(systemctl, 0o755)
    this.playbook = join(root, 'haproxy.yml')
    writeFileSync(
      this.playbook,
      `- name: HAProxy configuration of the OORT panel
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The role's HAProxy tasks
      ansible.builtin.include_role:
        name: oort_panel
        tasks_from: haproxy-config.yml
`,
    )
    this.inventory = join(root, 'inventory.yml')
    writeFileSync(this.inventory, `all:\n  hosts:\n    localhost:\n      ansible_connection: local\n      ansible_python_interpreter: "{{ ansible_playbook_python }}"\n`)
  }

  /** Runs the role; returns its output and the systemctl calls it made. */
  async apply(vars: Record<string, unknown>): Promise<Run & {systemctl: string[]}> {
    const varsFile = join(this.root, `vars-${++this.count}.json`)
    writeFileSync(varsFile, JSON.stringify({oort_panel_haproxy_config: this.config, ...vars}))
    writeFileSync(this.systemctlLog, '')
    const result = await run('ansible-playbook', ['-i', this.inventory, '-e', `@${varsFile}`, this.playbook], {
      env: {
        ...process.env,
        PATH: `${this.bin}:${process.env.PATH}`,
        ANSIBLE_ROLES_PATH: ROLES,
        ANSIBLE_NOCOLOR: '1',
        ANSIBLE_RETRY_FILES_ENABLED: '0',
        ANSIBLE_LOCAL_TEMP: join(this.root, 'ansible-local'),
        ANSIBLE_REMOTE_TEMP: join(this.root, 'ansible-remote'),
      },
    })
    const systemctl = readFileSync(this.systemctlLog, 'utf8').split('\n').filter(Boolean)
    return {...result, systemctl}
  }
}


function haproxyCheck(file: string): Run {
  const result = spawnSync('haproxy', ['-c', '-f', file], {encoding: 'utf8', timeout: 30_000})
  return {status: result.status, output: `${result.stdout}${result.stderr}`}
}

function servers(config: string): string[] {
  return config.split('\n').filter((line) => /^\s+server\s/.test(line)).map((line) => line.trim())
}

/** A CA certificate (what HAProxy verifies the Vault nodes against) and a frontend PEM (certificate and key). */
function makeTls(root: string): {ca: string; pem: string} {
  requireTool('openssl', 'openssl')
  const ca = join(root, 'ca.pem')
  const key = join(root, 'front.key')
  const cert = join(root, 'front.crt')
  const openssl = (args: string[]) => {
    const result = spawnSync('openssl', args, {encoding: 'utf8', timeout: 60_000})
    assert.equal(result.status, 0, result.stderr)
  }
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=oort-test-ca', '-keyout', join(root, 'ca.key'), '-out', ca])
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=oort.test', '-keyout', key, '-out', cert])
  const pem = join(root, 'front.pem')
  writeFileSync(pem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'), {mode: 0o600})
  return {ca, pem}
}

describe('oort_panel: the HAProxy configuration template', () => {
  // At the suite's level, so that it lasts until the suite ends (tempDir removes it in an `after`).
  const root = tempDir('comet-haproxy-')
  let role: HaproxyRole
  let tls: {ca: string; pem: string}

  // Everything a panel host has, but on loopback, without TLS, with the stats socket in the test's folder.
  const base = (root: string) => ({
    oort_panel_vault_tls: false,
    oort_panel_haproxy_bind_address: '127.0.0.1',
    oort_panel_haproxy_port: 18200,
    oort_panel_haproxy_stats_socket: join(root, 'admin.sock'),
  })
  const one = [{name: 'oort1', address: '127.0.0.1', port: 8200}]
  const three = [
    {name: 'oort1', address: '127.0.0.1', port: 8200},
    {name: 'oort2', address: '::1', port: 8210},
    {name: 'oort3', address: 'localhost', port: 8220},
  ]

  before(() => {
    requireTool('ansible-playbook', 'ansible')
    requireTool('haproxy', 'haproxy')
    role = new HaproxyRole(root)
    tls = makeTls(root)
  })

  it('renders one backend: haproxy -c accepts it, the Vault health check and the logging are there, HAProxy (only) is reloaded', async () => {
    const result = await role.apply({...base(role.root), oort_panel_haproxy_backends: one})
    assert.equal(result.status, 0, result.output)
    const config = readFileSync(role.config, 'utf8')
    const check = haproxyCheck(role.config)
    assert.equal(check.status, 0, check.output)
    assert.deepEqual(servers(config), ['server oort1 127.0.0.1:8200 check'])
    assert.match(config, /^\s+option httpchk$/m)
    assert.match(config, /^\s+http-check send meth GET uri \/v1\/sys\/health$/m)
    assert.match(config, /^\s+http-check expect status 200$/m)
    assert.match(config, /^\s+log stdout format short local0 info$/m)
    assert.match(config, /^\s+option httplog$/m)
    assert.match(config, /^\s+log global$/m)
    assert.equal(statSync(role.config).mode & 0o777, 0o640)
    assert.deepEqual(result.systemctl.filter((call) => !call.startsWith('show ')), ['reload haproxy'])
    assert.match(result.output, /RUNNING HANDLER \[oort_panel : Reload haproxy\]/)

    const again = await role.apply({...base(role.root), oort_panel_haproxy_backends: one})
    assert.equal(again.status, 0, again.output)
    assert.equal(recap(again.output).changed, 0, again.output)
    assert.deepEqual(again.systemctl, [], 'an unchanged configuration reloads nothing')
  })

  it('renders three backends (IPv4, IPv6, a host name) with TLS to the nodes and on the frontend, and haproxy -c accepts it', async () => {
    const result = await role.apply({
      ...base(role.root),
      oort_panel_vault_tls: true,
      oort_panel_haproxy_backend_ca_file: tls.ca,
      oort_panel_haproxy_frontend_pem: tls.pem,
      oort_panel_haproxy_backends: three,
    })
    assert.equal(result.status, 0, result.output)
    const config = readFileSync(role.config, 'utf8')
    const check = haproxyCheck(role.config)
    assert.equal(check.status, 0, check.output)
    assert.deepEqual(servers(config), ['server oort1 127.0.0.1:8200 check', 'server oort2 [::1]:8210 check', 'server oort3 localhost:8220 check'])
    assert.match(config, new RegExp(`^\\s+bind 127\\.0\\.0\\.1:18200 ssl crt ${tls.pem.replace(/[.]/g, '\\.')}$`, 'm'))
    assert.match(config, new RegExp(`default-server .* ssl verify required ca-file ${tls.ca.replace(/[.]/g, '\\.')} check-ssl$`, 'm'))
    assert.deepEqual(result.systemctl.filter((call) => !call.startsWith('show ')), ['reload haproxy'])
  })

  it('a bad backend fails validation and leaves the old configuration byte for byte, with no reload', async () => {
    const good = await role.apply({...base(role.root), oort_panel_haproxy_backends: one})
    assert.equal(good.status, 0, good.output)
    const before = readFileSync(role.config)
    assert.equal(haproxyCheck(role.config).status, 0)

    const cases: Array<{name: string; vars: Record<string, unknown>; expect: RegExp}> = [
      // Caught by the role's checks before anything is rendered.
      {name: "port 'abc'", vars: {oort_panel_haproxy_backends: [{name: 'oort1', address: '127.0.0.1', port: 'abc'}]}, expect: /oort_panel_haproxy_backends\[0\].*port \(1-65535\)/},
      {name: 'an address with spaces', vars: {oort_panel_haproxy_backends: [{name: 'oort1', address: '127.0.0.1 backup', port: 8200}]}, expect: /address \(a host name, IPv4 or IPv6 address, no spaces\)/},
      {name: 'port 70000', vars: {oort_panel_haproxy_backends: [{name: 'oort1', address: '127.0.0.1', port: 70000}]}, expect: /port \(1-65535\)/},
      {name: 'two backends with one name', vars: {oort_panel_haproxy_backends: [...one, ...one]}, expect: /distinct names/},
      {name: 'no backend', vars: {oort_panel_haproxy_backends: []}, expect: /non-empty list/},
      // Past the role's checks: only `validate: haproxy -c -f %s` stands between this and the live file.
      {name: 'a line HAProxy does not know', vars: {oort_panel_haproxy_backends: one, oort_panel_haproxy_global_extra: ['no-such-keyword on']}, expect: /failed to validate/},
      {name: 'a CA file that is not there', vars: {oort_panel_haproxy_backends: one, oort_panel_vault_tls: true, oort_panel_haproxy_backend_ca_file: join(role.root, 'missing-ca.pem')}, expect: /failed to validate/},
    ]
    for (const bad of cases) {
      const result = await role.apply({...base(role.root), ...bad.vars})
      assert.notEqual(result.status, 0, `${bad.name}: the role succeeded\n${result.output}`)
      assert.match(result.output, bad.expect, bad.name)
      assert.deepEqual(readFileSync(role.config), before, `${bad.name}: the configuration changed`)
      assert.deepEqual(result.systemctl, [], `${bad.name}: a service was touched`)
    }
    assert.ok(!existsSync(`${role.config}.tmp`))
  })
})
