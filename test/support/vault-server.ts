import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync} from 'node:fs'
import {request as httpRequest} from 'node:http'
import {request as httpsRequest} from 'node:https'
import {createServer, type Server, type Socket} from 'node:net'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const BUILD = fileURLToPath(new URL('../../../test/vault/build.sh', import.meta.url))

let binary: string | undefined

/** The real Vault server built from the Go module proxy by test/vault/build.sh (once; cached outside the repo). */
export function vaultBinary(): string {
  binary ??= execFileSync('bash', [BUILD], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 3_600_000}).trim().split('\n').at(-1) as string
  return binary
}

/**
 * Starts `vault server` with its output in `logFile`, not in a pipe: Vault logs every request, and a pipe that
 * is not drained while the test blocks its event loop (spawnSync of the CLI) fills up and stalls Vault.
 */
export function spawnVaultServer(configFile: string, logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a', 0o600)
  try {
    return spawn(vaultBinary(), ['server', `-config=${configFile}`], {stdio: ['ignore', fd, fd], env: {...process.env, VAULT_LOG_LEVEL: 'warn'}})
  } finally {
    closeSync(fd)
  }
}

/** What a Vault started by spawnVaultServer has written so far. */
export function readVaultLog(logFile: string): string {
  return existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number}
      server.close(() => resolve(port))
    })
  })
}

export interface VaultTls {
  certFile: string
  keyFile: string
  /** The CA that signed the certificate: what clients need in VAULT_CACERT. */
  ca: Buffer
}

/** One HTTP(S) request; with TLS, only the given CA is trusted (as VAULT_CACERT does for comet). */
function send(url: string, method: string, headers: Record<string, string>, body: string | undefined, ca?: Buffer): Promise<{status: number; text: string}> {
  return new Promise((resolve, reject) => {
    const request = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, {method, headers, ...(ca ? {ca} : {})}, (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk) => (text += chunk))
      response.on('end', () => resolve({status: response.statusCode ?? 0, text}))
    })
    request.on('error', reject)
    request.end(body)
  })
}

/**
 * A real Vault server on loopback with file storage, so that it can be stopped and started again with its data:
 * initialised with one unseal key, unsealed, KV v2 mounted at secret/.
 */
export class VaultServer {
  rootToken = ''
  private unsealKey = ''
  private process?: ChildProcess

  private constructor(
    readonly directory: string,
    readonly port: number,
    readonly tls?: VaultTls,
  ) {}

  get address(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`
  }

  get log(): string {
    return readVaultLog(join(this.directory, 'vault.log'))
  }

  static async start(directory: string, tls?: VaultTls): Promise<VaultServer> {
    const server = new VaultServer(directory, await freePort(), tls)
    mkdirSync(join(directory, 'data'), {recursive: true})
    writeFileSync(
      join(directory, 'config.hcl'),
      `storage "file" {\n  path = "${join(directory, 'data')}"\n}\nlistener "tcp" {\n  address = "127.0.0.1:${server.port}"\n  ${tls ? `tls_cert_file = "${tls.certFile}"\n  tls_key_file = "${tls.keyFile}"` : 'tls_disable = true'}\n}\ndisable_mlock = true\napi_addr = "${server.address}"\nui = false\n`,
    )
    await server.launch()
    const init = await server.api('PUT', '/v1/sys/init', {secret_shares: 1, secret_threshold: 1}, '')
    server.unsealKey = init.body.keys[0]
    server.rootToken = init.body.root_token
    await server.unseal()
    await server.api('POST', '/v1/sys/mounts/secret', {type: 'kv', options: {version: '2'}})
    return server
  }

  private async launch(): Promise<void> {
    const child = spawnVaultServer(join(this.directory, 'config.hcl'), join(this.directory, 'vault.log'))
    this.process = child
    const deadline = Date.now() + 30_000
    for (;;) {
      try {
        const response = await send(`${this.address}/v1/sys/health?sealedcode=200&uninitcode=200`, 'GET', {}, undefined, this.tls?.ca)
        if (response.status === 200) return
      } catch {}
      if (child.exitCode !== null) throw new Error(`vault exited (${child.exitCode}): ${this.log}`)
      if (Date.now() > deadline) {
        child.kill('SIGKILL')
        throw new Error(`vault did not start: ${this.log}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  private async unseal(): Promise<void> {
    await this.api('PUT', '/v1/sys/unseal', {key: this.unsealKey}, '')
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      const health = await send(`${this.address}/v1/sys/health`, 'GET', {}, undefined, this.tls?.ca)
      if (health.status === 200) return
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error(`vault did not become active: ${this.log}`)
  }

  async stop(): Promise<void> {
    const child = this.process
    if (!child || child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
    this.process = undefined
  }

  /** Starts the same server again on the same port, with its data, and unseals it. */
  async restart(): Promise<void> {
    await this.stop()
    await this.launch()
    await this.unseal()
  }

  /** Vault's HTTP API, as an operator would call it with curl. */
  async api(method: string, path: string, body?: unknown, token = this.rootToken): Promise<{status: number; body: any}> {
    const response = await send(
      `${this.address}${path}`,
      method,
      {...(token ? {'X-Vault-Token': token} : {}), 'Content-Type': 'application/json'},
      body === undefined ? undefined : JSON.stringify(body),
      this.tls?.ca,
    )
    const parsed = response.text ? JSON.parse(response.text) : undefined
    if (response.status >= 400 && token === this.rootToken) throw new Error(`${method} ${path}: ${response.status} ${response.text}`)
    return {status: response.status, body: parsed}
  }

  /** Writes a KV v2 document at secret/<path>. */
  async put(path: string, data: Record<string, unknown>): Promise<void> {
    await this.api('POST', `/v1/secret/data/${path}`, {data})
  }

  async get(path: string): Promise<Record<string, any> | undefined> {
    const response = await send(`${this.address}/v1/secret/data/${path}`, 'GET', {'X-Vault-Token': this.rootToken}, undefined, this.tls?.ca)
    if (response.status === 404) return undefined
    return JSON.parse(response.text).data.data
  }
}

/** A socket that accepts connections and never answers: a Vault black-holed by a firewall or a hung host. */
export async function blackHole(): Promise<{address: string; close: () => Promise<void>}> {
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as {port: number}
  return {
    address: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}
