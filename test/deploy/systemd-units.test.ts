import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, it} from 'node:test'

import {tempDir} from '../support/temp-dir.js'

const REPO = fileURLToPath(new URL('../../../', import.meta.url))
const UNITS = join(REPO, 'deploy', 'systemd')
const SYSTEM_UNITS = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((directory) => existsSync(join(directory, 'sysinit.target')))

function systemdAnalyze(): string {
  const found = spawnSync('sh', ['-c', 'command -v systemd-analyze'], {encoding: 'utf8'}).stdout.trim()
  if (!found) assert.fail('systemd-analyze not found: install the Debian package systemd')
  if (!SYSTEM_UNITS) assert.fail('no systemd unit directory with sysinit.target (/usr/lib/systemd/system): install the Debian package systemd')
  return found
}

/**
 * A root for `systemd-analyze verify --root`: the system's own units (sysinit.target, multi-user.target, ...),
 * our units where the comet_agent role installs them (/etc/systemd/system), and stand-ins for exactly the
 * executables they name. With --root, verify looks for ExecStart=/ExecReload= binaries under the root, so the
 * check does not depend on what this machine happens to have, and a unit naming a binary the target will not have
 * fails. Returns the root and the unit names.
 */
function makeRoot(edit: (name: string, text: string) => string = (_, text) => text): {root: string; units: string[]} {
  const root = tempDir('comet-systemd-')
  mkdirSync(join(root, 'usr', 'lib', 'systemd'), {recursive: true})
  cpSync(SYSTEM_UNITS as string, join(root, 'usr', 'lib', 'systemd', 'system'), {recursive: true, verbatimSymlinks: true})
  // Debian 12 is merged-/usr: /bin -> usr/bin.
  mkdirSync(join(root, 'usr', 'bin'), {recursive: true})
  symlinkSync('usr/bin', join(root, 'bin'))
  for (const stand of ['usr/bin/env', 'usr/bin/kill']) {
    writeFileSync(join(root, stand), '#!/bin/sh\nexit 0\n')
    chmodSync(join(root, stand), 0o755)
  }
  const target = join(root, 'etc', 'systemd', 'system')
  mkdirSync(target, {recursive: true})
  const units = readdirSync(UNITS).filter((name) => /\.(service|timer)$/.test(name)).sort()
  for (const name of units) writeFileSync(join(target, name), edit(name, readFileSync(join(UNITS, name), 'utf8')))
  return {root, units}
}

function verify(root: string, units: string[]): {status: number | null; output: string} {
  const result = spawnSync(systemdAnalyze(), ['verify', `--root=${root}`, ...units], {encoding: 'utf8', timeout: 60_000, env: {...process.env, SYSTEMD_LOG_COLOR: '0'}})
  return {status: result.status, output: `${result.stdout}${result.stderr}`.trim()}
}

function keys(name: string): Map<string, string[]> {
  const values = new Map<string, string[]>()
  for (const line of readFileSync(join(UNITS, name), 'utf8').split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line)
    if (match) values.set(match[1], [...(values.get(match[1]) ?? []), match[2]])
  }
  return values
}

describe('deploy/systemd units', () => {
  it('systemd-analyze verify --root accepts every unit with no warning at all', () => {
    const {root, units} = makeRoot()
    assert.deepEqual(units, ['comet-export.service', 'comet-verify.service', 'comet-verify.timer', 'comet-watch.service'])
    const result = verify(root, units)
    assert.equal(result.output, '', `systemd-analyze verify printed:\n${result.output}`)
    assert.equal(result.status, 0)
  })

  it('the same check catches a broken unit: an unknown key, a bad value, a missing binary, a bad timer value', () => {
    const cases: Array<{name: string; unit: string; edit: (text: string) => string; expect: RegExp}> = [
      {name: 'a misspelt key', unit: 'comet-watch.service', edit: (text) => text.replace(/^Restart=always$/m, 'Restrt=always'), expect: /Unknown key .*Restrt/},
      {name: 'an invalid value', unit: 'comet-watch.service', edit: (text) => text.replace(/^Restart=always$/m, 'Restart=sometimes'), expect: /restart specifier.*sometimes/},
      {name: 'a binary the target does not have', unit: 'comet-verify.service', edit: (text) => text.replace(/^ExecStart=\/usr\/bin\/env node/m, 'ExecStart=/usr/local/bin/node'), expect: /\/usr\/local\/bin\/node is not executable/},
      {name: 'a timer that cannot fire', unit: 'comet-verify.timer', edit: (text) => text.replace(/^OnUnitActiveSec=60s$/m, 'OnUnitActiveSec=sixty'), expect: /timer value.*sixty/},
    ]
    for (const bad of cases) {
      const {root, units} = makeRoot((name, text) => (name === bad.unit ? bad.edit(text) : text))
      const result = verify(root, units)
      assert.ok(result.status !== 0 || result.output !== '', `${bad.name}: systemd-analyze verify saw nothing wrong`)
      assert.match(result.output, bad.expect, bad.name)
    }
  })

  it('ExecStart runs this repository\'s bin/run.js, as installed in /opt/safecomet', () => {
    for (const name of ['comet-watch.service', 'comet-verify.service', 'comet-export.service']) {
      const [exec] = keys(name).get('ExecStart') ?? []
      const match = /^\/usr\/bin\/env node \/opt\/safecomet\/(\S+) (watch|verify|export)\b/.exec(exec ?? '')
      assert.ok(match, `${name}: ExecStart=${exec}`)
      assert.ok(existsSync(join(REPO, match[1])), `${name}: ${match[1]} is not in the repository`)
    }
  })

  it('comet-watch restarts forever, tells systemd it is ready and alive (notify, watchdog), and keeps out of what would break fencing procedures or V8', () => {
    const watch = keys('comet-watch.service')
    assert.deepEqual(watch.get('Type'), ['notify'])
    assert.deepEqual(watch.get('NotifyAccess'), ['main'])
    assert.deepEqual(watch.get('WatchdogSec'), ['60s'])
    assert.deepEqual(watch.get('Restart'), ['always'])
    assert.deepEqual(watch.get('StartLimitIntervalSec'), ['0'])
    assert.deepEqual(watch.get('KillMode'), ['process'])
    for (const name of ['comet-watch.service', 'comet-verify.service']) {
      const unit = keys(name)
      assert.deepEqual(unit.get('EnvironmentFile'), ['-/etc/comet/comet.env'], name)
      // Procedures inherit the sandbox: nothing that makes a mount namespace, drops capabilities or address
      // families, forbids privilege changes, or write-execute memory (V8's JIT).
      for (const forbidden of [
        'MemoryDenyWriteExecute', 'ProtectSystem', 'ProtectHome', 'PrivateTmp', 'PrivateDevices', 'PrivateNetwork', 'ReadOnlyPaths', 'InaccessiblePaths',
        'ProtectKernelModules', 'ProtectKernelTunables', 'ProtectControlGroups', 'CapabilityBoundingSet', 'RestrictAddressFamilies', 'SystemCallFilter', 'DynamicUser', 'User',
      ])
        assert.equal(unit.get(forbidden), undefined, `${name} must not set ${forbidden}`)
      assert.deepEqual(unit.get('NoNewPrivileges'), ['no'], name)
      assert.deepEqual(unit.get('UMask'), ['0077'], name)
    }
  })

  it('comet-export runs as its own user with a hard sandbox, still without MemoryDenyWriteExecute', () => {
    const exporter = keys('comet-export.service')
    assert.deepEqual(exporter.get('User'), ['comet-export'])
    assert.deepEqual(exporter.get('ProtectSystem'), ['strict'])
    assert.deepEqual(exporter.get('NoNewPrivileges'), ['yes'])
    assert.deepEqual(exporter.get('CapabilityBoundingSet'), [''])
    assert.equal(exporter.get('MemoryDenyWriteExecute'), undefined)
  })
})
