/*
 * inotify on the sentinels' directories, read on the event loop's own thread (a uv_poll on the inotify fd,
 * as libuv reads the one under fs.watch), so an event costs no thread hop on the hot path.
 *
 * Why not fs.watch: libuv drops the events whose wd is -1, and IN_Q_OVERFLOW is one of them, so a queue
 * overflow would go unnoticed and the events it swallowed with it. Here the overflow reaches JavaScript, which
 * re-verifies every sentinel at once.
 *
 * API (wrapped by src/core/detect/inotify-watcher.ts):
 *   open(callback(wd, mask, name|null)) -> handle    every event, one call each; wd -1 with IN_Q_OVERFLOW
 *   add(handle, directory) -> wd                      throws an Error with .code (ENOENT, ENOTDIR, ENOSPC, ...)
 *   remove(handle, wd)                                a watch the kernel already dropped is not an error
 *   close(handle)                                     idempotent; no callback after it
 *   constants: IN_Q_OVERFLOW, IN_IGNORED, IN_DELETE_SELF, IN_MOVE_SELF, IN_UNMOUNT
 */
#include <errno.h>
#include <stdio.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <uv.h>

/* libuv's mask for fs.watch, so the events are the ones the agent was built on; IN_ONLYDIR refuses a path that
 * is not a directory. A directory reached through a symlink (/var/run) is watched, as fs.watch does: watching
 * reads nothing, and the sentinels in it are still opened without following a link. */
#define WATCH_MASK \
  (IN_ATTRIB | IN_CREATE | IN_MODIFY | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR)

typedef struct {
  napi_env env;
  int fd;
  uv_poll_t poll;
  napi_ref callback;
  napi_async_context async;
  /* Registered while open, so that the environment's teardown closes the libuv handle. */
  napi_async_cleanup_hook_handle hook;
  /* The teardown is waiting for the handle to close. */
  napi_async_cleanup_hook_handle teardown;
  /* close() was asked for: no more callbacks. */
  bool closing;
  /* uv_close has called back: the handle's memory is no longer libuv's. */
  bool handle_closed;
  /* The JavaScript handle was collected: the memory is no longer JavaScript's. */
  bool finalized;
} watcher_t;

static void maybe_free(watcher_t *w) {
  if (w->handle_closed && w->finalized) free(w);
}

/* The descriptor is closed only once libuv has let go of it: closing it earlier could let another open
 * reuse the number while the loop still refers to it. */
static void on_handle_closed(uv_handle_t *handle) {
  watcher_t *w = handle->data;
  close(w->fd);
  w->fd = -1;
  w->handle_closed = true;
  if (w->teardown) {
    napi_async_cleanup_hook_handle teardown = w->teardown;
    w->teardown = NULL;
    napi_remove_async_cleanup_hook(teardown);
  }
  maybe_free(w);
}

/* Idempotent; event loop thread only. */
static void watcher_close(watcher_t *w) {
  if (w->closing) return;
  w->closing = true;
  if (w->hook) {
    napi_remove_async_cleanup_hook(w->hook);
    w->hook = NULL;
  }
  if (w->callback) {
    napi_delete_reference(w->env, w->callback);
    w->callback = NULL;
  }
  if (w->async) {
    napi_async_destroy(w->env, w->async);
    w->async = NULL;
  }
  uv_close((uv_handle_t *)&w->poll, on_handle_closed);
}

/* At environment teardown (the process exits with the watcher open): libuv handles must be closed then. */
static void cleanup_hook(napi_async_cleanup_hook_handle hook, void *arg) {
  watcher_t *w = arg;
  w->hook = NULL;
  if (w->closing) {
    napi_remove_async_cleanup_hook(hook);
    return;
  }
  w->teardown = hook;
  watcher_close(w);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  watcher_t *w = data;
  watcher_close(w);
  w->finalized = true;
  maybe_free(w);
}

static void deliver(watcher_t *w, int32_t wd, uint32_t mask, const char *name) {
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_value callback, recv, argv[3], result;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_get_reference_value(env, w->callback, &callback);
  /* napi_make_callback takes an object as `this`. */
  napi_get_global(env, &recv);
  napi_create_int32(env, wd, &argv[0]);
  napi_create_uint32(env, mask, &argv[1]);
  if (name && *name)
    napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &argv[2]);
  else
    napi_get_null(env, &argv[2]);
  /* napi_make_callback runs the microtasks afterwards, as for any callback from the event loop. */
  if (napi_make_callback(env, w->async, recv, callback, 3, argv, &result) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
}

/* Buffers read per wake-up before the loop gets a turn: a flood of events in a watched directory must not starve
 * the agent's timers (and systemd's watchdog); the poll is level-triggered, so the rest comes next turn. */
#define READS_PER_TURN 16

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  watcher_t *w = handle->data;
  if (status < 0) {
    /* libuv stopped polling the descriptor (it will not call again): say events may be lost, so that the agent
     * checks every sentinel, and poll again; a descriptor that keeps failing is retried once a turn, no faster. */
    deliver(w, -1, IN_Q_OVERFLOW, NULL);
    if (!w->closing) uv_poll_start(&w->poll, UV_READABLE, on_readable);
    return;
  }
  char buffer[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
  for (int reads = 0; reads < READS_PER_TURN && !w->closing; reads++) {
    ssize_t length = read(w->fd, buffer, sizeof buffer);
    if (length < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) deliver(w, -1, IN_Q_OVERFLOW, NULL);
      return;
    }
    if (length == 0) return;
    for (char *p = buffer; p < buffer + length && !w->closing;) {
      const struct inotify_event *event = (const struct inotify_event *)p;
      deliver(w, event->wd, event->mask, event->len > 0 ? event->name : NULL);
      p += sizeof(struct inotify_event) + event->len;
    }
  }
}

static watcher_t *get_watcher(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, "inotify addon: not a watcher handle");
    return NULL;
  }
  watcher_t *w = data;
  if (w->closing) {
    napi_throw_error(env, "ECLOSED", "inotify addon: the watcher is closed");
    return NULL;
  }
  return w;
}

static napi_value throw_errno(napi_env env, const char *what, const char *path, int e) {
  static const struct {
    int code;
    const char *name;
  } names[] = {{ENOENT, "ENOENT"}, {ENOTDIR, "ENOTDIR"}, {ENOSPC, "ENOSPC"}, {EACCES, "EACCES"}, {EMFILE, "EMFILE"},
               {ENFILE, "ENFILE"}, {ELOOP, "ELOOP"},     {EINVAL, "EINVAL"}, {ENOMEM, "ENOMEM"}, {EPERM, "EPERM"}};
  const char *code = "EIO";
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].code == e) code = names[i].name;
  char message[4200];
  snprintf(message, sizeof message, "%s%s%s: %s (%s)", what, path ? " " : "", path ? path : "", strerror(e), code);
  napi_throw_error(env, code, message);
  return NULL;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], external, name;
  napi_valuetype type;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "inotify addon: open(callback) needs a function");
    return NULL;
  }
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return throw_errno(env, "inotify_init1", NULL, errno);
  watcher_t *w = calloc(1, sizeof *w);
  if (!w) {
    close(fd);
    return throw_errno(env, "inotify addon", NULL, ENOMEM);
  }
  w->env = env;
  w->fd = fd;
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &w->poll, fd) != 0) {
    close(fd);
    free(w);
    napi_throw_error(env, NULL, "inotify addon: cannot poll the inotify descriptor");
    return NULL;
  }
  w->poll.data = w;
  napi_create_reference(env, argv[0], 1, &w->callback);
  napi_create_string_utf8(env, "comet:inotify", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &w->async);
  napi_add_async_cleanup_hook(env, cleanup_hook, w, &w->hook);
  uv_poll_start(&w->poll, UV_READABLE, on_readable);
  napi_create_external(env, w, finalize, NULL, &external);
  return external;
}

static char *get_string(napi_env env, napi_value value) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "inotify addon: the path must be a string");
    return NULL;
  }
  char *text = malloc(length + 1);
  if (!text) return NULL;
  napi_get_value_string_utf8(env, value, text, length + 1, &length);
  if (strlen(text) != length) {
    free(text);
    napi_throw_type_error(env, NULL, "inotify addon: the path contains a NUL byte");
    return NULL;
  }
  return text;
}

static napi_value js_add(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  watcher_t *w = argc >= 1 ? get_watcher(env, argv[0]) : NULL;
  if (!w) return NULL;
  char *path = argc >= 2 ? get_string(env, argv[1]) : NULL;
  if (!path) return NULL;
  int wd = inotify_add_watch(w->fd, path, WATCH_MASK);
  if (wd < 0) {
    int e = errno;
    napi_value thrown = throw_errno(env, "inotify_add_watch", path, e);
    free(path);
    return thrown;
  }
  free(path);
  napi_create_int32(env, wd, &result);
  return result;
}

static napi_value js_remove(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t wd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  watcher_t *w = argc >= 1 ? get_watcher(env, argv[0]) : NULL;
  if (!w) return NULL;
  if (argc < 2 || napi_get_value_int32(env, argv[1], &wd) != napi_ok) {
    napi_throw_type_error(env, NULL, "inotify addon: remove(handle, wd) needs a watch descriptor");
    return NULL;
  }
  /* EINVAL: the kernel has already dropped it (the directory is gone). */
  if (inotify_rm_watch(w->fd, wd) != 0 && errno != EINVAL) return throw_errno(env, "inotify_rm_watch", NULL, errno);
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, "inotify addon: not a watcher handle");
    return NULL;
  }
  watcher_close(data);
  return NULL;
}

static void set_constant(napi_env env, napi_value exports, const char *name, uint32_t value) {
  napi_value number;
  napi_create_uint32(env, value, &number);
  napi_set_named_property(env, exports, name, number);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"add", NULL, js_add, NULL, NULL, NULL, napi_default, NULL},
      {"remove", NULL, js_remove, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  set_constant(env, exports, "IN_Q_OVERFLOW", IN_Q_OVERFLOW);
  set_constant(env, exports, "IN_IGNORED", IN_IGNORED);
  set_constant(env, exports, "IN_DELETE_SELF", IN_DELETE_SELF);
  set_constant(env, exports, "IN_MOVE_SELF", IN_MOVE_SELF);
  set_constant(env, exports, "IN_UNMOUNT", IN_UNMOUNT);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
