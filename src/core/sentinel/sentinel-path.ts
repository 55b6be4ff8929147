import {posix} from 'node:path'

/**
 * Why a path cannot be a sentinel, or undefined when it can. Sentinel paths reach the shell (COMET_SENTINEL)
 * and the seed's `<node>:<mode>:<path>` keys, so they must be absolute, normalised and free of control characters.
 */
export function sentinelPathProblem(path: string): string | undefined {
  if (path.length === 0) return 'is empty'
  if (!path.startsWith('/')) return 'must be an absolute path'
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'contains a control character'
  if (path.split('/').some((part) => part === '..')) return "must not contain '..'"
  if (path === '/' || path.endsWith('/')) return 'must name a file, not a directory'
  if (posix.normalize(path) !== path) return `is not normalised (did you mean ${posix.normalize(path)}?)`
  if (path.length > 4095) return 'is longer than PATH_MAX'
  return undefined
}
