/** Defence in depth: whatever a library put in a message, no Vault-token-shaped string is printed or logged. */
export function redact(message: string): string {
  return message.replace(/\b(hvs|hvb|hvr|s|b)\.[A-Za-z0-9_-]{20,}/g, '[redacted]').replace(/(x-vault-token["':\s]+)[^\s"',}]+/gi, '$1[redacted]')
}
