/*
 * fanotify permission guard for comet (N-API, C).
 *
 * One guard = one fanotify group (FAN_CLASS_CONTENT) with inode marks on sentinel files for
 * FAN_OPEN_PERM | FAN_ACCESS_PERM (permission: the opener/reader is held until answered) and
 * FAN_MODIFY | FAN_CLOSE_WRITE (notification). A reader thread reads the events and:
 *
 *   - answers permission events of this very process (the agent hashing its sentinels) with allow,
 *     without asking JavaScript;
 *   - answers permission events of allow-listed executables (/proc/<pid>/exe) with allow, natively too;
 *   - hands every other event to JavaScript through a thread-safe function; JavaScript answers
 *     permission events with respond(id, allow);
 *   - keeps every permission event it handed over in a deadline queue (all share one timeout, so the
 *     queue is FIFO), and answers it itself with the default decision when JavaScript has not answered
 *     in time. JavaScript that is busy, stuck or dead therefore never holds a process on the host
 *     longer than the timeout.
 *
 * close() stops the reader, answers whatever is still pending with the default decision, and closes
 * the group fd: the kernel then allows every event it still holds for the group (fanotify_release).
 * The same happens when the process dies, SIGKILL included: the kernel closes the fd and allows.
 *
 * Threads: the JS thread calls open/mark/unmark/respond/close; the reader thread reads, answers and
 * expires. `mu` protects the pending queue, the allow-list, the counters and `stopping`. An event fd
 * in the pending queue is answered and closed by exactly one thread: whoever removes it under `mu`.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <signal.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>

#define PERM_EVENTS (FAN_OPEN_PERM | FAN_ACCESS_PERM)
#define NOTIFY_EVENTS (FAN_MODIFY | FAN_CLOSE_WRITE)
#define MARK_MASK (PERM_EVENTS | NOTIFY_EVENTS)
#define MAX_TIMEOUT_MS 60000
#define MAX_ALLOW 256

typedef struct pending {
  uint64_t id;
  int fd;
  struct timespec deadline;
  struct pending *next;
} pending_t;

typedef struct {
  uint64_t answered_by_js;
  uint64_t answered_by_default_on_timeout;
  uint64_t answered_on_close;
  uint64_t allowed_self;
  uint64_t allowed_executables;
  uint64_t late_answers;
  uint64_t notifications;
  uint64_t overflows;
  uint64_t errors;
} stats_t;

/* An inode whose opener is stopped (SIGSTOP) by the reader thread itself, before JavaScript hears of it. */
typedef struct {
  dev_t dev;
  ino_t ino;
} inode_t;

typedef struct guard {
  int fan_fd;
  int wake_fd;
  pid_t self;
  bool default_allow;
  int timeout_ms;
  pthread_t reader;
  bool reader_started;
  bool closed; /* JS thread only */
  bool hook_registered;
  napi_env env;
  napi_threadsafe_function tsfn;

  pthread_mutex_t mu;
  bool stopping;
  uint64_t next_id;
  pending_t *head, *tail;
  char *allow[MAX_ALLOW];
  size_t allow_count;
  inode_t *freeze;
  unsigned char *freeze_state;
  size_t freeze_count, freeze_used, freeze_capacity; /* live entries; live and tombstones; slots (a power of two) */
  char *self_exe; /* processes of the agent's own executable are left to JavaScript, which knows its own commands */
  stats_t stats;
} guard_t;

/* A message from the reader thread to JavaScript. */
enum { MSG_EVENT = 0, MSG_ERROR = 1 };
typedef struct {
  int type;
  uint64_t id; /* 0 for notifications */
  int32_t pid;
  uint64_t mask;
  bool frozen;
  int64_t frozen_at_ns; /* CLOCK_MONOTONIC */
  char *path;
  char *exe;
  char *message;
} msg_t;

/* ------------------------------------------------------------------ helpers */

static void timespec_add_ms(struct timespec *t, int ms) {
  t->tv_sec += ms / 1000;
  t->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (t->tv_nsec >= 1000000000L) {
    t->tv_sec += 1;
    t->tv_nsec -= 1000000000L;
  }
}

static int64_t ms_until(const struct timespec *deadline) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  int64_t ns = (int64_t)(deadline->tv_sec - now.tv_sec) * 1000000000LL + (deadline->tv_nsec - now.tv_nsec);
  if (ns <= 0) return 0;
  return (ns + 999999) / 1000000; /* round up: never wake before the deadline */
}

static const char *errno_name(int e) {
  const char *name = strerrorname_np(e);
  return name ? name : "EUNKNOWN";
}

/* Writes the answer and closes the event fd. Both happen exactly once per permission event. */
static void answer(int fan_fd, int fd, bool allow) {
  struct fanotify_response response = {.fd = fd, .response = allow ? FAN_ALLOW : FAN_DENY};
  ssize_t n;
  do {
    n = write(fan_fd, &response, sizeof response);
  } while (n < 0 && errno == EINTR);
  close(fd);
}

static char *read_link(const char *link) {
  char buf[PATH_MAX + 32];
  ssize_t n = readlink(link, buf, sizeof buf - 1);
  if (n < 0) return NULL;
  buf[n] = '\0';
  return strdup(buf);
}

static char *fd_path(int fd) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  return read_link(link);
}

static char *pid_exe(int32_t pid) {
  if (pid <= 0) return NULL;
  char link[64];
  snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
  return read_link(link);
}

static void msg_free(msg_t *m) {
  if (!m) return;
  free(m->path);
  free(m->exe);
  free(m->message);
  free(m);
}

/* Returns false when the message could not be queued (the caller then keeps responsibility). */
static bool send_msg(guard_t *g, msg_t *m) {
  if (napi_call_threadsafe_function(g->tsfn, m, napi_tsfn_nonblocking) != napi_ok) {
    msg_free(m);
    return false;
  }
  return true;
}

static void send_error(guard_t *g, const char *what, int e) {
  msg_t *m = calloc(1, sizeof *m);
  if (!m) return;
  m->type = MSG_ERROR;
  char text[256];
  snprintf(text, sizeof text, "fanotify reader: %s: %s (%s)", what, strerror(e), errno_name(e));
  m->message = strdup(text);
  send_msg(g, m);
}

/* ------------------------------------------------------------------ reader thread */

/* Answers every pending event whose deadline passed. Caller holds mu. */
static void expire_due(guard_t *g) {
  while (g->head && ms_until(&g->head->deadline) == 0) {
    pending_t *p = g->head;
    g->head = p->next;
    if (!g->head) g->tail = NULL;
    answer(g->fan_fd, p->fd, g->default_allow);
    g->stats.answered_by_default_on_timeout++;
    free(p);
  }
}

static bool allow_listed(guard_t *g, const char *exe) {
  if (!exe) return false;
  for (size_t i = 0; i < g->allow_count; i++)
    if (strcmp(g->allow[i], exe) == 0) return true;
  return false;
}

/* The freeze set: an open-addressing hash table of (dev, ino), so that marking 100 000 sentinels stays linear. */
#define SLOT_EMPTY 0
#define SLOT_USED 1
#define SLOT_GONE 2

static size_t inode_hash(dev_t dev, ino_t ino) {
  uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ULL ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4FULL;
  return (size_t)(h ^ (h >> 29));
}

/* Called with mu held: the slot of (dev, ino), or of where it would go; SIZE_MAX when the table is empty. */
static size_t freeze_slot(guard_t *g, dev_t dev, ino_t ino, bool for_insert) {
  if (g->freeze_capacity == 0) return SIZE_MAX;
  size_t mask = g->freeze_capacity - 1, first_gone = SIZE_MAX;
  for (size_t i = inode_hash(dev, ino) & mask, probes = 0; probes < g->freeze_capacity; i = (i + 1) & mask, probes++) {
    if (g->freeze_state[i] == SLOT_EMPTY) return for_insert && first_gone != SIZE_MAX ? first_gone : (for_insert ? i : SIZE_MAX);
    if (g->freeze_state[i] == SLOT_GONE) {
      if (first_gone == SIZE_MAX) first_gone = i;
      continue;
    }
    if (g->freeze[i].dev == dev && g->freeze[i].ino == ino) return i;
  }
  return for_insert ? first_gone : SIZE_MAX;
}

/* Called with mu held. */
static bool freeze_marked(guard_t *g, int fd) {
  struct stat st;
  if (g->freeze_count == 0 || fstat(fd, &st) != 0) return false;
  size_t slot = freeze_slot(g, st.st_dev, st.st_ino, false);
  return slot != SIZE_MAX && g->freeze_state[slot] == SLOT_USED && g->freeze[slot].dev == st.st_dev && g->freeze[slot].ino == st.st_ino;
}

/* Called with mu held: keeps the table at most half full. */
static bool freeze_grow(guard_t *g) {
  if ((g->freeze_used + 1) * 2 <= g->freeze_capacity) return true;
  size_t capacity = g->freeze_capacity ? g->freeze_capacity * 2 : 1024;
  inode_t *slots = calloc(capacity, sizeof *slots);
  unsigned char *state = calloc(capacity, 1);
  if (!slots || !state) {
    free(slots);
    free(state);
    return false;
  }
  inode_t *old = g->freeze;
  unsigned char *old_state = g->freeze_state;
  size_t old_capacity = g->freeze_capacity;
  g->freeze = slots;
  g->freeze_state = state;
  g->freeze_capacity = capacity;
  g->freeze_count = g->freeze_used = 0;
  for (size_t i = 0; i < old_capacity; i++)
    if (old_state[i] == SLOT_USED) {
      size_t slot = freeze_slot(g, old[i].dev, old[i].ino, true);
      g->freeze[slot] = old[i];
      g->freeze_state[slot] = SLOT_USED;
      g->freeze_count++;
      g->freeze_used++;
    }
  free(old);
  free(old_state);
  return true;
}

static void handle_event(guard_t *g, const struct fanotify_event_metadata *meta) {
  if (meta->mask & FAN_Q_OVERFLOW) {
    pthread_mutex_lock(&g->mu);
    g->stats.overflows++;
    pthread_mutex_unlock(&g->mu);
    msg_t *m = calloc(1, sizeof *m);
    if (m) {
      m->type = MSG_EVENT;
      m->mask = meta->mask;
      m->pid = meta->pid;
      send_msg(g, m);
    }
    if (meta->fd >= 0) close(meta->fd);
    return;
  }
  if (meta->fd < 0) return;

  bool permission = (meta->mask & (PERM_EVENTS | FAN_OPEN_EXEC_PERM)) != 0;
  if (permission && meta->pid == g->self) {
    /* The agent itself (reading a sentinel to hash it): never ask JavaScript, which may be the one
     * waiting for this very read. */
    answer(g->fan_fd, meta->fd, true);
    pthread_mutex_lock(&g->mu);
    g->stats.allowed_self++;
    pthread_mutex_unlock(&g->mu);
    return;
  }

  /* For a permission event the process is blocked in the kernel, so /proc/<pid>/exe is still its. */
  char *exe = pid_exe(meta->pid);
  if (permission) {
    pthread_mutex_lock(&g->mu);
    bool allowed = allow_listed(g, exe);
    if (allowed) g->stats.allowed_executables++;
    pthread_mutex_unlock(&g->mu);
    if (allowed) {
      answer(g->fan_fd, meta->fd, true);
      free(exe);
      return;
    }
  }

  /* The opener of a freeze-marked sentinel is stopped here, at once: its memory (and any key in it) stays for
   * forensics, and no busy JavaScript can let it run on. */
  bool frozen = false;
  int64_t frozen_at_ns = 0;
  if (permission && meta->pid > 0) {
    pthread_mutex_lock(&g->mu);
    bool freeze = freeze_marked(g, meta->fd) && !(exe && g->self_exe && strcmp(exe, g->self_exe) == 0);
    pthread_mutex_unlock(&g->mu);
    if (freeze && kill(meta->pid, SIGSTOP) == 0) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      frozen = true;
      frozen_at_ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
    }
  }

  msg_t *m = calloc(1, sizeof *m);
  char *path = fd_path(meta->fd);
  if (!permission) {
    close(meta->fd);
    pthread_mutex_lock(&g->mu);
    g->stats.notifications++;
    pthread_mutex_unlock(&g->mu);
    if (!m) {
      free(exe);
      free(path);
      return;
    }
    *m = (msg_t){.type = MSG_EVENT, .id = 0, .pid = meta->pid, .mask = meta->mask, .path = path, .exe = exe};
    send_msg(g, m);
    return;
  }

  pending_t *p = calloc(1, sizeof *p);
  pthread_mutex_lock(&g->mu);
  if (!m || !p) {
    /* No memory: answer now rather than hold the process. */
    answer(g->fan_fd, meta->fd, g->default_allow);
    g->stats.answered_by_default_on_timeout++;
    pthread_mutex_unlock(&g->mu);
    free(m);
    free(p);
    free(exe);
    free(path);
    return;
  }
  p->id = ++g->next_id;
  p->fd = meta->fd;
  clock_gettime(CLOCK_MONOTONIC, &p->deadline);
  timespec_add_ms(&p->deadline, g->timeout_ms);
  if (g->tail)
    g->tail->next = p;
  else
    g->head = p;
  g->tail = p;
  uint64_t id = p->id;
  pthread_mutex_unlock(&g->mu);

  *m = (msg_t){.type = MSG_EVENT, .id = id, .pid = meta->pid, .mask = meta->mask, .frozen = frozen, .frozen_at_ns = frozen_at_ns, .path = path, .exe = exe};
  /* If JavaScript cannot be reached (closing), the deadline answers it. */
  send_msg(g, m);
}

static void *reader_main(void *arg) {
  guard_t *g = arg;
  /* Aligned for struct fanotify_event_metadata; room for hundreds of events per read. */
  uint64_t buf[8192 / sizeof(uint64_t)];

  for (;;) {
    int timeout = -1;
    pthread_mutex_lock(&g->mu);
    if (g->stopping) {
      pthread_mutex_unlock(&g->mu);
      break;
    }
    expire_due(g);
    if (g->head) timeout = (int)ms_until(&g->head->deadline);
    pthread_mutex_unlock(&g->mu);

    struct pollfd fds[2] = {{.fd = g->fan_fd, .events = POLLIN}, {.fd = g->wake_fd, .events = POLLIN}};
    int n = poll(fds, 2, timeout);
    if (n < 0) {
      if (errno != EINTR) {
        send_error(g, "poll", errno);
        usleep(10000);
      }
      continue;
    }
    if (fds[1].revents & POLLIN) {
      uint64_t value;
      if (read(g->wake_fd, &value, sizeof value) < 0) { /* EAGAIN: nothing to drain */
      }
    }
    if (!(fds[0].revents & POLLIN)) continue;

    /* One read per turn, so expiry is checked between batches even under a steady stream. */
    ssize_t len = read(g->fan_fd, buf, sizeof buf);
    if (len < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        /* E.g. EMFILE: the kernel could not open an event fd; it has answered that event itself. */
        pthread_mutex_lock(&g->mu);
        g->stats.errors++;
        pthread_mutex_unlock(&g->mu);
        send_error(g, "read", errno);
        usleep(1000);
      }
      continue;
    }
    const struct fanotify_event_metadata *meta = (const struct fanotify_event_metadata *)buf;
    for (; FAN_EVENT_OK(meta, len); meta = FAN_EVENT_NEXT(meta, len)) {
      if (meta->vers != FANOTIFY_METADATA_VERSION) {
        /* Cannot happen with these headers; never leave an fd unanswered anyway. */
        if (meta->fd >= 0) {
          if (meta->mask & (PERM_EVENTS | FAN_OPEN_EXEC_PERM))
            answer(g->fan_fd, meta->fd, g->default_allow);
          else
            close(meta->fd);
        }
        continue;
      }
      handle_event(g, meta);
    }
  }
  return NULL;
}

/* ------------------------------------------------------------------ JS <-> native */

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, NULL, "fanotify addon: " #call " failed"); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, const char *path, int e) {
  char text[PATH_MAX + 256];
  if (path)
    snprintf(text, sizeof text, "%s %s: %s (%s)", what, path, strerror(e), errno_name(e));
  else
    snprintf(text, sizeof text, "%s: %s (%s)", what, strerror(e), errno_name(e));
  napi_throw_error(env, errno_name(e), text);
  return NULL;
}

static void set_str(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  if (value)
    napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v);
  else
    napi_get_null(env, &v);
  napi_set_named_property(env, obj, key, v);
}

static void set_num(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, obj, key, v);
}

static void set_bool(napi_env env, napi_value obj, const char *key, bool value) {
  napi_value v;
  napi_get_boolean(env, value, &v);
  napi_set_named_property(env, obj, key, v);
}

static const struct {
  uint64_t bit;
  const char *name;
} KINDS[] = {
    {FAN_OPEN_PERM, "open-perm"},   {FAN_ACCESS_PERM, "access-perm"}, {FAN_OPEN_EXEC_PERM, "open-exec-perm"},
    {FAN_MODIFY, "modify"},         {FAN_CLOSE_WRITE, "close-write"}, {FAN_CLOSE_NOWRITE, "close-nowrite"},
    {FAN_ACCESS, "access"},         {FAN_OPEN, "open"},               {FAN_Q_OVERFLOW, "overflow"},
};

/* Runs on the JS thread. env is NULL when the function is being torn down: only free then. */
static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)context;
  msg_t *m = data;
  if (env == NULL || js_cb == NULL) {
    msg_free(m);
    return;
  }
  napi_value obj, undefined, result;
  napi_create_object(env, &obj);
  if (m->type == MSG_ERROR) {
    set_str(env, obj, "type", "error");
    set_str(env, obj, "message", m->message);
  } else {
    bool permission = (m->mask & (PERM_EVENTS | FAN_OPEN_EXEC_PERM)) != 0;
    set_str(env, obj, "type", "event");
    set_num(env, obj, "id", (double)m->id);
    set_num(env, obj, "pid", m->pid);
    set_num(env, obj, "mask", (double)m->mask);
    set_bool(env, obj, "permission", permission);
    set_bool(env, obj, "frozen", m->frozen);
    if (m->frozen) {
      char ns[32];
      snprintf(ns, sizeof ns, "%lld", (long long)m->frozen_at_ns);
      set_str(env, obj, "frozenAtNs", ns);
    }
    set_str(env, obj, "path", m->path);
    set_str(env, obj, "exe", m->exe);
    napi_value kinds;
    napi_create_array(env, &kinds);
    uint32_t k = 0;
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++) {
      if (m->mask & KINDS[i].bit) {
        napi_value s;
        napi_create_string_utf8(env, KINDS[i].name, NAPI_AUTO_LENGTH, &s);
        napi_set_element(env, kinds, k++, s);
      }
    }
    napi_set_named_property(env, obj, "kinds", kinds);
  }
  msg_free(m);
  napi_get_undefined(env, &undefined);
  /* An exception thrown by the callback is left pending: Node reports it as uncaught. The wrapper
   * catches its handler's exceptions, so this only happens on a bug in the wrapper. */
  napi_call_function(env, undefined, js_cb, 1, &obj, &result);
}

static void guard_shutdown(guard_t *g, bool from_hook);

static void cleanup_hook(void *arg) {
  guard_t *g = arg;
  g->hook_registered = false;
  guard_shutdown(g, true);
}

/* Idempotent; JS thread only. */
static void guard_shutdown(guard_t *g, bool from_hook) {
  if (g->closed) return;
  g->closed = true;
  if (g->reader_started) {
    pthread_mutex_lock(&g->mu);
    g->stopping = true;
    pthread_mutex_unlock(&g->mu);
    uint64_t one = 1;
    if (write(g->wake_fd, &one, sizeof one) < 0) { /* eventfd cannot overflow with a single write */
    }
    pthread_join(g->reader, NULL);
    g->reader_started = false;
  }
  pthread_mutex_lock(&g->mu);
  while (g->head) {
    pending_t *p = g->head;
    g->head = p->next;
    answer(g->fan_fd, p->fd, g->default_allow);
    g->stats.answered_on_close++;
    free(p);
  }
  g->tail = NULL;
  pthread_mutex_unlock(&g->mu);
  /* Closing the group lets the kernel allow every event still queued for it. */
  if (g->fan_fd >= 0) close(g->fan_fd);
  if (g->wake_fd >= 0) close(g->wake_fd);
  g->fan_fd = g->wake_fd = -1;
  if (g->tsfn) {
    napi_release_threadsafe_function(g->tsfn, napi_tsfn_abort);
    g->tsfn = NULL;
  }
  if (g->hook_registered && !from_hook) {
    napi_remove_env_cleanup_hook(g->env, cleanup_hook, g);
    g->hook_registered = false;
  }
}

static void guard_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  guard_t *g = data;
  guard_shutdown(g, false);
  for (size_t i = 0; i < g->allow_count; i++) free(g->allow[i]);
  free(g->freeze);
  free(g->freeze_state);
  free(g->self_exe);
  pthread_mutex_destroy(&g->mu);
  free(g);
}

static guard_t *get_guard(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, "fanotify addon: not a guard handle");
    return NULL;
  }
  return data;
}

/* Returns a malloc'd UTF-8 copy of a JS string, or NULL (with a pending exception). */
static char *get_string(napi_env env, napi_value value, const char *what) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) {
    char text[128];
    snprintf(text, sizeof text, "fanotify addon: %s must be a string", what);
    napi_throw_type_error(env, NULL, text);
    return NULL;
  }
  char *s = malloc(len + 1);
  if (!s) {
    napi_throw_error(env, "ENOMEM", "fanotify addon: out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, value, s, len + 1, &len);
  if (strlen(s) != len) {
    free(s);
    char text[128];
    snprintf(text, sizeof text, "fanotify addon: %s contains a NUL byte", what);
    napi_throw_type_error(env, NULL, text);
    return NULL;
  }
  return s;
}

/* Replaces the allow-list with the strings of a JS array. Returns false with a pending exception. */
static bool set_allow_list(napi_env env, guard_t *g, napi_value array) {
  bool is_array = false;
  napi_is_array(env, array, &is_array);
  if (!is_array) {
    napi_throw_type_error(env, NULL, "fanotify addon: allowExecutables must be an array of paths");
    return false;
  }
  uint32_t n = 0;
  napi_get_array_length(env, array, &n);
  if (n > MAX_ALLOW) {
    napi_throw_range_error(env, NULL, "fanotify addon: at most 256 allowed executables");
    return false;
  }
  char *list[MAX_ALLOW];
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    napi_get_element(env, array, i, &item);
    list[i] = get_string(env, item, "an allowed executable");
    if (!list[i]) {
      for (uint32_t j = 0; j < i; j++) free(list[j]);
      return false;
    }
  }
  pthread_mutex_lock(&g->mu);
  for (size_t i = 0; i < g->allow_count; i++) free(g->allow[i]);
  for (uint32_t i = 0; i < n; i++) g->allow[i] = list[i];
  g->allow_count = n;
  pthread_mutex_unlock(&g->mu);
  return true;
}

static bool get_named(napi_env env, napi_value obj, const char *key, napi_value *out) {
  bool has = false;
  napi_has_named_property(env, obj, key, &has);
  if (!has) return false;
  napi_get_named_property(env, obj, key, out);
  napi_valuetype t;
  napi_typeof(env, *out, &t);
  return t != napi_undefined;
}

/* open({defaultAllow: boolean, timeoutMs: number, allowExecutables?: string[]}, callback) -> handle */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], v;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t0, t1;
  napi_typeof(env, argv[0], &t0);
  napi_typeof(env, argv[1], &t1);
  if (argc < 2 || t0 != napi_object || t1 != napi_function) {
    napi_throw_type_error(env, NULL, "fanotify addon: open(options, callback)");
    return NULL;
  }
  bool default_allow = false;
  if (get_named(env, argv[0], "defaultAllow", &v)) napi_get_value_bool(env, v, &default_allow);
  double timeout = 200;
  if (get_named(env, argv[0], "timeoutMs", &v) && napi_get_value_double(env, v, &timeout) != napi_ok) {
    napi_throw_type_error(env, NULL, "fanotify addon: timeoutMs must be a number");
    return NULL;
  }
  if (!(timeout >= 1 && timeout <= MAX_TIMEOUT_MS)) {
    napi_throw_range_error(env, NULL, "fanotify addon: timeoutMs must be between 1 and 60000");
    return NULL;
  }

  guard_t *g = calloc(1, sizeof *g);
  if (!g) {
    napi_throw_error(env, "ENOMEM", "fanotify addon: out of memory");
    return NULL;
  }
  g->fan_fd = g->wake_fd = -1;
  g->self = getpid();
  g->self_exe = read_link("/proc/self/exe");
  g->default_allow = default_allow;
  g->timeout_ms = (int)timeout;
  g->env = env;
  pthread_mutex_init(&g->mu, NULL);
  napi_value handle;
  /* From here on the finalizer owns g, whatever fails. */
  if (napi_create_external(env, g, guard_finalize, NULL, &handle) != napi_ok) {
    pthread_mutex_destroy(&g->mu);
    free(g);
    napi_throw_error(env, NULL, "fanotify addon: napi_create_external failed");
    return NULL;
  }
  if (get_named(env, argv[0], "allowExecutables", &v) && !set_allow_list(env, g, v)) return NULL;

  g->fan_fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (g->fan_fd < 0) return throw_errno(env, "fanotify_init(FAN_CLASS_CONTENT)", NULL, errno);
  g->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (g->wake_fd < 0) {
    int e = errno;
    guard_shutdown(g, false);
    return throw_errno(env, "eventfd", NULL, e);
  }
  napi_value name;
  napi_create_string_utf8(env, "comet-fanotify", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &g->tsfn) != napi_ok) {
    g->tsfn = NULL;
    guard_shutdown(g, false);
    napi_throw_error(env, NULL, "fanotify addon: napi_create_threadsafe_function failed");
    return NULL;
  }
  /* Registered after the thread-safe function, so it runs before the function's own teardown. */
  if (napi_add_env_cleanup_hook(env, cleanup_hook, g) == napi_ok) g->hook_registered = true;
  int e = pthread_create(&g->reader, NULL, reader_main, g);
  if (e != 0) {
    guard_shutdown(g, false);
    return throw_errno(env, "pthread_create", NULL, e);
  }
  g->reader_started = true;
  return handle;
}

/* Keeps the freeze table in step with the marks: add (freeze) or drop the inode now at path. */
static void track_freeze(guard_t *g, const char *path, bool freeze) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  pthread_mutex_lock(&g->mu);
  size_t slot = freeze_slot(g, st.st_dev, st.st_ino, false);
  bool present = slot != SIZE_MAX && g->freeze_state[slot] == SLOT_USED;
  if (present && !freeze) {
    g->freeze_state[slot] = SLOT_GONE;
    g->freeze_count--;
  } else if (!present && freeze && freeze_grow(g)) {
    slot = freeze_slot(g, st.st_dev, st.st_ino, true);
    if (slot != SIZE_MAX) {
      if (g->freeze_state[slot] == SLOT_EMPTY) g->freeze_used++;
      g->freeze[slot] = (inode_t){st.st_dev, st.st_ino};
      g->freeze_state[slot] = SLOT_USED;
      g->freeze_count++;
    }
  }
  pthread_mutex_unlock(&g->mu);
}

static napi_value do_mark(napi_env env, napi_callback_info info, bool add) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "fanotify addon: mark(handle, path)");
    return NULL;
  }
  guard_t *g = get_guard(env, argv[0]);
  if (!g) return NULL;
  char *path = get_string(env, argv[1], "path");
  if (!path) return NULL;
  if (g->closed) {
    free(path);
    napi_throw_error(env, "ERR_CLOSED", "fanotify guard is closed");
    return NULL;
  }
  /* An inode mark (no FAN_MARK_MOUNT / FAN_MARK_FILESYSTEM), never following a symlink. */
  unsigned flags = (add ? FAN_MARK_ADD : FAN_MARK_REMOVE) | FAN_MARK_DONT_FOLLOW;
  bool freeze = false;
  if (add && argc >= 3) napi_get_value_bool(env, argv[2], &freeze);
  if (!add) track_freeze(g, path, false);
  if (fanotify_mark(g->fan_fd, flags, MARK_MASK, AT_FDCWD, path) != 0) {
    int e = errno;
    napi_value r = throw_errno(env, add ? "fanotify_mark(FAN_MARK_ADD)" : "fanotify_mark(FAN_MARK_REMOVE)", path, e);
    free(path);
    return r;
  }
  if (add) track_freeze(g, path, freeze);
  free(path);
  return NULL;
}

static napi_value js_mark(napi_env env, napi_callback_info info) { return do_mark(env, info, true); }
static napi_value js_unmark(napi_env env, napi_callback_info info) { return do_mark(env, info, false); }

/* respond(handle, id, allow) -> true when answered, false when it was already answered (timeout). */
static napi_value js_respond(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "fanotify addon: respond(handle, id, allow)");
    return NULL;
  }
  guard_t *g = get_guard(env, argv[0]);
  if (!g) return NULL;
  double idd = 0;
  bool allow = false;
  if (napi_get_value_double(env, argv[1], &idd) != napi_ok || napi_get_value_bool(env, argv[2], &allow) != napi_ok) {
    napi_throw_type_error(env, NULL, "fanotify addon: respond(handle, id: number, allow: boolean)");
    return NULL;
  }
  uint64_t id = (uint64_t)idd;
  bool found = false;
  pthread_mutex_lock(&g->mu);
  pending_t **link = &g->head, *prev = NULL;
  while (*link) {
    pending_t *p = *link;
    if (p->id == id) {
      *link = p->next;
      if (g->tail == p) g->tail = prev;
      answer(g->fan_fd, p->fd, allow);
      g->stats.answered_by_js++;
      free(p);
      found = true;
      break;
    }
    prev = p;
    link = &p->next;
  }
  if (!found) g->stats.late_answers++;
  pthread_mutex_unlock(&g->mu);
  napi_get_boolean(env, found, &result);
  return result;
}

static napi_value js_set_allow(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "fanotify addon: setAllowExecutables(handle, paths)");
    return NULL;
  }
  guard_t *g = get_guard(env, argv[0]);
  if (!g) return NULL;
  set_allow_list(env, g, argv[1]);
  return NULL;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], obj;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  guard_t *g = argc ? get_guard(env, argv[0]) : NULL;
  if (!g) return NULL;
  pthread_mutex_lock(&g->mu);
  stats_t s = g->stats;
  double pending = 0;
  for (pending_t *p = g->head; p; p = p->next) pending++;
  pthread_mutex_unlock(&g->mu);
  napi_create_object(env, &obj);
  set_num(env, obj, "pending", pending);
  set_num(env, obj, "answeredByHandler", (double)s.answered_by_js);
  set_num(env, obj, "answeredByDefaultOnTimeout", (double)s.answered_by_default_on_timeout);
  set_num(env, obj, "answeredOnClose", (double)s.answered_on_close);
  set_num(env, obj, "allowedSelf", (double)s.allowed_self);
  set_num(env, obj, "allowedExecutables", (double)s.allowed_executables);
  set_num(env, obj, "lateAnswers", (double)s.late_answers);
  set_num(env, obj, "notifications", (double)s.notifications);
  set_num(env, obj, "overflows", (double)s.overflows);
  set_num(env, obj, "readErrors", (double)s.errors);
  return obj;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  guard_t *g = argc ? get_guard(env, argv[0]) : NULL;
  if (!g) return NULL;
  guard_shutdown(g, false);
  return NULL;
}

static napi_value availability_result(napi_env env, bool available, const char *code, const char *reason) {
  napi_value obj;
  napi_create_object(env, &obj);
  set_bool(env, obj, "available", available);
  if (!available) {
    set_str(env, obj, "code", code);
    set_str(env, obj, "reason", reason);
  }
  return obj;
}

/* availability(path?) -> {available: true} | {available: false, code, reason}. Never throws on errno. */
static napi_value js_availability(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *path = NULL;
  if (argc >= 1) {
    napi_valuetype t;
    napi_typeof(env, argv[0], &t);
    if (t == napi_string && !(path = get_string(env, argv[0], "path"))) return NULL;
  }
  char reason[PATH_MAX + 512];
  int fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    free(path);
    switch (e) {
      case EPERM:
        return availability_result(env, false, "EPERM",
                                   "fanotify_init refused (EPERM): permission events need CAP_SYS_ADMIN in the initial "
                                   "user namespace: run comet as root, outside a user-namespaced or restricted "
                                   "container (or one whose seccomp profile blocks fanotify_init)");
      case EINVAL: {
        int notif = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC, O_RDONLY);
        if (notif >= 0) close(notif);
        return availability_result(env, false, "EINVAL",
                                    notif >= 0 ? "fanotify works but not its permission events: the kernel is built "
                                                 "without CONFIG_FANOTIFY_ACCESS_PERMISSIONS (EINVAL)"
                                               : "fanotify_init refused its arguments (EINVAL): the kernel's fanotify is "
                                                 "too old or built without CONFIG_FANOTIFY_ACCESS_PERMISSIONS");
      }
      case ENOSYS:
        return availability_result(env, false, "ENOSYS", "the kernel has no fanotify (CONFIG_FANOTIFY) (ENOSYS)");
      case EMFILE:
        return availability_result(env, false, "EMFILE",
                                   "too many fanotify groups for this user (fs.fanotify.max_user_groups) or open "
                                   "files (EMFILE)");
      default:
        snprintf(reason, sizeof reason, "fanotify_init failed: %s (%s)", strerror(e), errno_name(e));
        return availability_result(env, false, errno_name(e), reason);
    }
  }
  if (path) {
    /* Held for microseconds: an open of `path` in between is blocked until close(), then allowed. */
    if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_DONT_FOLLOW, MARK_MASK, AT_FDCWD, path) != 0) {
      int e = errno;
      close(fd);
      snprintf(reason, sizeof reason, "cannot put a fanotify permission mark on %s: %s (%s)%s", path, strerror(e),
               errno_name(e),
               (e == ENODEV || e == EXDEV || e == EOPNOTSUPP || e == EINVAL)
                   ? ": its filesystem does not support fanotify permission events"
                   : "");
      free(path);
      return availability_result(env, false, errno_name(e), reason);
    }
    free(path);
  }
  close(fd);
  return availability_result(env, true, NULL, NULL);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"availability", NULL, js_availability, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"mark", NULL, js_mark, NULL, NULL, NULL, napi_default, NULL},
      {"unmark", NULL, js_unmark, NULL, NULL, NULL, napi_default, NULL},
      {"respond", NULL, js_respond, NULL, NULL, NULL, napi_default, NULL},
      {"setAllowExecutables", NULL, js_set_allow, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value max;
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_create_int32(env, MAX_TIMEOUT_MS, &max);
  napi_set_named_property(env, exports, "maxTimeoutMs", max);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
