/*
 * sd_notify(3) without libsystemd: one datagram to the socket systemd names in $NOTIFY_SOCKET, sent by the
 * agent's own (main) process, so that systemd attributes it to the unit (NotifyAccess=main). Node has no Unix
 * datagram sockets, and a `systemd-notify` child is another process, which systemd may not attribute.
 *
 * API (wrapped by src/core/agent/systemd-notify.ts):
 *   notify(socketPath, message) -> undefined    throws an Error with .code (ENOENT, ECONNREFUSED, EINVAL, ...)
 *     socketPath: a filesystem path, or '@name' for an abstract socket
 */
#include <errno.h>
#include <node_api.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char *get_string(napi_env env, napi_value value, size_t *length_out) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) return NULL;
  char *text = malloc(length + 1);
  if (!text) return NULL;
  napi_get_value_string_utf8(env, value, text, length + 1, &length);
  *length_out = length;
  return text;
}

static napi_value throw_errno(napi_env env, const char *what, int e) {
  const char *code = e == ENOENT ? "ENOENT" : e == ECONNREFUSED ? "ECONNREFUSED" : e == EACCES ? "EACCES" : e == EINVAL ? "EINVAL" : e == EAGAIN ? "EAGAIN" : "EIO";
  char message[256];
  snprintf(message, sizeof message, "%s: %s (%s)", what, strerror(e), code);
  napi_throw_error(env, code, message);
  return NULL;
}

static napi_value js_notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  size_t path_length = 0, message_length = 0;
  char *path = argc >= 2 ? get_string(env, argv[0], &path_length) : NULL;
  char *message = argc >= 2 ? get_string(env, argv[1], &message_length) : NULL;
  napi_value result = NULL;
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  if (!path || !message) {
    napi_throw_type_error(env, NULL, "systemd addon: notify(socketPath, message) needs two strings");
    goto done;
  }
  /* Absolute paths and abstract names ('@') only, as sd_notify accepts. */
  if (path_length < 2 || path_length >= sizeof address.sun_path || (path[0] != '/' && path[0] != '@')) {
    throw_errno(env, "NOTIFY_SOCKET", EINVAL);
    goto done;
  }
  memcpy(address.sun_path, path, path_length);
  if (address.sun_path[0] == '@') address.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, "socket", errno);
    goto done;
  }
  ssize_t sent = sendto(fd, message, message_length, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&address,
                        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_length));
  int e = errno;
  close(fd);
  if (sent < 0) throw_errno(env, "sendto NOTIFY_SOCKET", e);
done:
  free(path);
  free(message);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {{"notify", NULL, js_notify, NULL, NULL, NULL, napi_default, NULL}};
  napi_define_properties(env, exports, 1, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
