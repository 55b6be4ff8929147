import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

/** The addons under native/, built by `npm run build` (native/build.mjs) where there is a C compiler. Each has a fallback in JavaScript or says why it cannot. */
export type AddonName = 'fanotify' | 'inotify' | 'checksum' | 'systemd'

const OVERRIDE: Record<AddonName, string> = {fanotify: 'COMET_FANOTIFY_ADDON', inotify: 'COMET_INOTIFY_ADDON', checksum: 'COMET_CHECKSUM_ADDON', systemd: 'COMET_SYSTEMD_ADDON'}
const loaded = new Map<AddonName, {addon: unknown} | {reason: string}>()

/** Where an addon is: $COMET_<NAME>_ADDON, else native/<name>/build/Release/<name>.node under the package root. */
export function addonPath(name: AddonName): string {
  const override = process.env[OVERRIDE[name]]
  if (override) return override
  const relative = join('native', name, 'build', 'Release', `${name}.node`)
  // src/core/native (tests run from source) or dist/src/core/native (built): the package root is above.
  let directory = dirname(fileURLToPath(import.meta.url))
  for (let up = 0; up < 6; up++) {
    if (existsSync(join(directory, 'package.json')) && existsSync(join(directory, 'native', name))) return join(directory, relative)
    directory = dirname(directory)
  }
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', relative)
}

/** Loads an addon once per process; where it cannot be, says why (never throws). */
export function loadAddon<T>(name: AddonName): {addon: T} | {reason: string} {
  const cached = loaded.get(name)
  if (cached) return cached as {addon: T} | {reason: string}
  const path = addonPath(name)
  let state: {addon: unknown} | {reason: string}
  if (process.platform !== 'linux') state = {reason: `${name} is Linux-only`}
  else if (!existsSync(path)) state = {reason: `the ${name} addon is not built (${path} is missing: npm run build:native needs a C compiler, make and python3)`}
  else {
    try {
      state = {addon: createRequire(import.meta.url)(path)}
    } catch (error) {
      state = {reason: `the ${name} addon does not load (${path}: ${(error as Error).message})`}
    }
  }
  loaded.set(name, state)
  return state as {addon: T} | {reason: string}
}
