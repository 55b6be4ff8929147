/*
 * Reads many sentinels at once, for a full check: for each path, open without following a symlink, check the
 * type on the open descriptor, hash the content with SHA-256, and return the identity (dev, ino, mode, owner,
 * mtime, size), the same as src/core/sentinel/read-sentinel.ts does for one file, but on several threads and
 * without a JavaScript object per system call. At 100 000 sentinels that is the difference between seconds
 * and a fraction of one.
 *
 * API (wrapped by src/core/sentinel/read-sentinels.ts):
 *   readFiles(paths: string[], shallow: boolean, sizes?: Float64Array) -> {kinds: Uint8Array, hashed: Uint8Array,
 *                                 digests: Buffer, stats: Float64Array, errors: (number | undefined)[]}
 *     kinds: 0 file, 1 missing, 2 symlink, 3 not a regular file, 4 unreadable (errors[i]: -errno, as libuv)
 *     sizes: the size each file had when recorded (-1: unknown); a file of another size is not read (hashed 0)
 *     digests: 32 bytes a file, meaningful where hashed[i] is 1
 *     stats: 7 numbers a file: dev, ino, mode (permission bits), uid, gid, mtimeMs, size
 *     shallow: lstat only, no open and no hash (the periodic check while fanotify guards the sentinels)
 *   readFilesAsync(paths, shallow, sizes, callback(error, result)): the same, off the JavaScript thread
 *   trimMemory(): malloc_trim(0)
 * readFiles is synchronous (the caller's event loop waits, as it did for the same work in JavaScript); both
 * spread the paths over up to 4 threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <node_api.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { KIND_FILE = 0, KIND_MISSING = 1, KIND_SYMLINK = 2, KIND_NOT_A_FILE = 3, KIND_UNREADABLE = 4 };
#define STATS_PER_FILE 7
#define MAX_THREADS 4
#define CHUNK (256 * 1024)

/* ---- SHA-256 (FIPS 180-4) ---- */

typedef struct {
  uint32_t state[8];
  uint64_t length;
  uint8_t block[64];
  size_t used;
} sha256_t;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
    0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
    0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
    0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
    0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
    0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_init(sha256_t *s) {
  static const uint32_t initial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->state, initial, sizeof initial);
  s->length = 0;
  s->used = 0;
}

static void sha256_compress(uint32_t state[8], const uint8_t block[64]) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)block[i * 4] << 24 | (uint32_t)block[i * 4 + 1] << 16 | (uint32_t)block[i * 4 + 2] << 8 | block[i * 4 + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6], h = state[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

static void sha256_update(sha256_t *s, const uint8_t *data, size_t length) {
  s->length += length;
  if (s->used > 0) {
    size_t take = 64 - s->used < length ? 64 - s->used : length;
    memcpy(s->block + s->used, data, take);
    s->used += take;
    data += take;
    length -= take;
    if (s->used < 64) return;
    sha256_compress(s->state, s->block);
    s->used = 0;
  }
  for (; length >= 64; data += 64, length -= 64) sha256_compress(s->state, data);
  memcpy(s->block, data, length);
  s->used = length;
}

static void sha256_final(sha256_t *s, uint8_t out[32]) {
  uint64_t bits = s->length * 8;
  uint8_t pad = 0x80;
  sha256_update(s, &pad, 1);
  uint8_t zero = 0;
  while (s->used != 56) sha256_update(s, &zero, 1);
  uint8_t length[8];
  for (int i = 0; i < 8; i++) length[i] = (uint8_t)(bits >> (56 - 8 * i));
  sha256_update(s, length, 8);
  for (int i = 0; i < 8; i++) {
    out[i * 4] = (uint8_t)(s->state[i] >> 24);
    out[i * 4 + 1] = (uint8_t)(s->state[i] >> 16);
    out[i * 4 + 2] = (uint8_t)(s->state[i] >> 8);
    out[i * 4 + 3] = (uint8_t)s->state[i];
  }
}

/* ---- the batch ---- */

typedef struct {
  char **paths;
  size_t count;
  bool shallow;
  /* The size each file had when recorded, or -1: a file of another size is not read at all (it changed), and
   * one of that size is read no further than one byte past it, so that a sentinel grown to a terabyte costs
   * the agent nothing. NULL: no sizes known. */
  double *expected;
  uint8_t *hashed;
  uint8_t *kinds;
  uint8_t *digests;
  double *stats;
  int *errors; /* errno of an unreadable file */
  size_t next; /* shared cursor, taken under the mutex */
  pthread_mutex_t mu;
} batch_t;

static void put_stats(double *out, const struct stat *st) {
  out[0] = (double)st->st_dev;
  out[1] = (double)st->st_ino;
  out[2] = (double)(st->st_mode & 07777);
  out[3] = (double)st->st_uid;
  out[4] = (double)st->st_gid;
  /* As Node computes Stats.mtimeMs, so that a baseline recorded either way compares equal. */
  out[5] = (double)st->st_mtim.tv_sec * 1e3 + (double)st->st_mtim.tv_nsec / 1e6;
  out[6] = (double)st->st_size;
}

static void read_one(batch_t *b, size_t i, uint8_t *buffer) {
  const char *path = b->paths[i];
  struct stat st;
  if (b->shallow) {
    if (lstat(path, &st) != 0) {
      b->kinds[i] = (errno == ENOENT || errno == ENOTDIR) ? KIND_MISSING : KIND_UNREADABLE;
      b->errors[i] = errno;
      return;
    }
    b->kinds[i] = S_ISLNK(st.st_mode) ? KIND_SYMLINK : S_ISREG(st.st_mode) ? KIND_FILE : KIND_NOT_A_FILE;
    put_stats(b->stats + i * STATS_PER_FILE, &st);
    return;
  }
  /* O_NONBLOCK: a FIFO swapped in for a sentinel must not hang the agent on open. */
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    b->kinds[i] = (e == ENOENT || e == ENOTDIR) ? KIND_MISSING : e == ELOOP ? KIND_SYMLINK : e == ENXIO ? KIND_NOT_A_FILE : KIND_UNREADABLE;
    b->errors[i] = e;
    return;
  }
  if (fstat(fd, &st) != 0) {
    b->kinds[i] = KIND_UNREADABLE;
    b->errors[i] = errno;
    close(fd);
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    b->kinds[i] = KIND_NOT_A_FILE;
    close(fd);
    return;
  }
  double expected = b->expected ? b->expected[i] : -1;
  b->kinds[i] = KIND_FILE;
  put_stats(b->stats + i * STATS_PER_FILE, &st);
  if (expected >= 0 && (double)st.st_size != expected) {
    close(fd);
    return;
  }
  uint64_t limit = expected >= 0 ? (uint64_t)expected + 1 : UINT64_MAX, total = 0;
  sha256_t hash;
  sha256_init(&hash);
  while (total < limit) {
    size_t want = limit - total < CHUNK ? (size_t)(limit - total) : CHUNK;
    ssize_t n = read(fd, buffer, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      b->kinds[i] = KIND_UNREADABLE;
      b->errors[i] = errno;
      close(fd);
      return;
    }
    if (n == 0) break;
    sha256_update(&hash, buffer, (size_t)n);
    total += (uint64_t)n;
  }
  close(fd);
  sha256_final(&hash, b->digests + i * 32);
  b->hashed[i] = 1;
}

/* Work is taken 64 paths at a time, so that threads finish together whatever the sizes. */
static void *worker(void *arg) {
  batch_t *b = arg;
  uint8_t *buffer = b->shallow ? NULL : malloc(CHUNK);
  if (!b->shallow && !buffer) return (void *)1;
  for (;;) {
    pthread_mutex_lock(&b->mu);
    size_t start = b->next;
    b->next = start + 64 < b->count ? start + 64 : b->count;
    size_t end = b->next;
    pthread_mutex_unlock(&b->mu);
    if (start >= end) break;
    for (size_t i = start; i < end; i++) read_one(b, i, buffer);
  }
  free(buffer);
  return NULL;
}

static void batch_free(batch_t *b) {
  if (!b) return;
  if (b->paths)
    for (size_t i = 0; i < b->count; i++) free(b->paths[i]);
  free(b->paths);
  free(b->expected);
  free(b->hashed);
  free(b->kinds);
  free(b->digests);
  free(b->stats);
  free(b->errors);
  free(b);
}

/* Copies the paths (and the expected sizes, a Float64Array or undefined) out of JavaScript, on its thread, into a
 * batch; NULL with an exception pending on failure. */
static batch_t *batch_from_js(napi_env env, napi_value array, bool shallow, napi_value sizes) {
  bool is_array = false;
  if (napi_is_array(env, array, &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, NULL, "checksum addon: readFiles(paths, shallow) needs an array of paths");
    return NULL;
  }
  uint32_t count;
  napi_get_array_length(env, array, &count);
  batch_t *b = calloc(1, sizeof *b);
  if (!b) goto out_of_memory;
  b->count = count;
  b->shallow = shallow;
  size_t n = count ? count : 1;
  b->paths = calloc(n, sizeof(char *));
  b->kinds = calloc(n, 1);
  b->digests = calloc(n, 32);
  b->stats = calloc(n * STATS_PER_FILE, sizeof(double));
  b->errors = calloc(n, sizeof(int));
  b->hashed = calloc(n, 1);
  if (!b->paths || !b->kinds || !b->digests || !b->stats || !b->errors || !b->hashed) goto out_of_memory;
  napi_valuetype sizes_type = napi_undefined;
  if (sizes) napi_typeof(env, sizes, &sizes_type);
  if (sizes_type != napi_undefined && sizes_type != napi_null) {
    bool is_typed = false;
    napi_typedarray_type type;
    size_t length = 0;
    void *data = NULL;
    if (napi_is_typedarray(env, sizes, &is_typed) != napi_ok || !is_typed ||
        napi_get_typedarray_info(env, sizes, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float64_array || length != count) {
      napi_throw_type_error(env, NULL, "checksum addon: the expected sizes must be a Float64Array, one a path");
      batch_free(b);
      return NULL;
    }
    b->expected = malloc(n * sizeof(double));
    if (!b->expected) goto out_of_memory;
    if (count) memcpy(b->expected, data, count * sizeof(double));
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    size_t length = 0;
    if (napi_get_element(env, array, i, &element) != napi_ok || napi_get_value_string_utf8(env, element, NULL, 0, &length) != napi_ok) {
      napi_throw_type_error(env, NULL, "checksum addon: every path must be a string");
      batch_free(b);
      return NULL;
    }
    b->paths[i] = malloc(length + 1);
    if (!b->paths[i]) goto out_of_memory;
    napi_get_value_string_utf8(env, element, b->paths[i], length + 1, &length);
    /* A NUL inside: no such file can exist under that name. */
    if (strlen(b->paths[i]) != length) b->paths[i][0] = '\0';
  }
  return b;
out_of_memory:
  batch_free(b);
  napi_throw_error(env, "ENOMEM", "checksum addon: out of memory");
  return NULL;
}

/* Reads the whole batch on up to MAX_THREADS threads (this one included); false when out of memory. */
static bool batch_run(batch_t *b) {
  pthread_mutex_init(&b->mu, NULL);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  size_t threads = b->count < 256 ? 1 : (size_t)(cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : cpus);
  pthread_t ids[MAX_THREADS];
  size_t started = 0;
  for (size_t t = 1; t < threads; t++)
    if (pthread_create(&ids[started], NULL, worker, b) == 0) started++;
  bool failed = worker(b) != NULL;
  for (size_t t = 0; t < started; t++) {
    void *status = NULL;
    pthread_join(ids[t], &status);
    failed = failed || status != NULL;
  }
  pthread_mutex_destroy(&b->mu);
  return !failed;
}

/* The batch's results as JavaScript values: {kinds, digests, stats, errors}. */
static napi_value batch_to_js(napi_env env, batch_t *b) {
  napi_value result, kinds_ab, kinds, hashed_ab, hashed, digests, stats_ab, stats, errors;
  void *kinds_data, *hashed_data, *digests_data, *stats_data;
  size_t count = b->count;
  if (napi_create_arraybuffer(env, count, &kinds_data, &kinds_ab) != napi_ok ||
      napi_create_arraybuffer(env, count, &hashed_data, &hashed_ab) != napi_ok ||
      napi_create_buffer(env, count * 32, &digests_data, &digests) != napi_ok ||
      napi_create_arraybuffer(env, count * STATS_PER_FILE * sizeof(double), &stats_data, &stats_ab) != napi_ok)
    return NULL;
  memcpy(kinds_data, b->kinds, count);
  memcpy(hashed_data, b->hashed, count);
  napi_create_typedarray(env, napi_uint8_array, count, hashed_ab, 0, &hashed);
  memcpy(digests_data, b->digests, count * 32);
  memcpy(stats_data, b->stats, count * STATS_PER_FILE * sizeof(double));
  napi_create_typedarray(env, napi_uint8_array, count, kinds_ab, 0, &kinds);
  napi_create_typedarray(env, napi_float64_array, count * STATS_PER_FILE, stats_ab, 0, &stats);
  napi_create_array_with_length(env, count, &errors);
  for (size_t i = 0; i < count; i++) {
    if (b->kinds[i] != KIND_UNREADABLE) continue;
    napi_value code;
    napi_create_int32(env, -b->errors[i], &code);
    napi_set_element(env, errors, (uint32_t)i, code);
  }
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "kinds", kinds);
  napi_set_named_property(env, result, "hashed", hashed);
  napi_set_named_property(env, result, "digests", digests);
  napi_set_named_property(env, result, "stats", stats);
  napi_set_named_property(env, result, "errors", errors);
  return result;
}

static napi_value js_read_files(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool shallow = false;
  if (argc >= 2) napi_get_value_bool(env, argv[1], &shallow);
  batch_t *b = argc >= 1 ? batch_from_js(env, argv[0], shallow, argc >= 3 ? argv[2] : NULL) : NULL;
  if (!b) {
    if (argc < 1) napi_throw_type_error(env, NULL, "checksum addon: readFiles(paths, shallow) needs an array of paths");
    return NULL;
  }
  napi_value result = batch_run(b) ? batch_to_js(env, b) : NULL;
  if (!result) napi_throw_error(env, "ENOMEM", "checksum addon: out of memory");
  batch_free(b);
  return result;
}

/* The same work off the JavaScript thread (libuv's pool), so that JavaScript can parse the store meanwhile. */
typedef struct {
  batch_t *batch;
  bool ok;
  napi_async_work work;
  napi_ref callback;
} async_read_t;

static void async_execute(napi_env env, void *data) {
  (void)env;
  async_read_t *a = data;
  a->ok = batch_run(a->batch);
}

static void async_complete(napi_env env, napi_status status, void *data) {
  async_read_t *a = data;
  napi_value callback, global, argv[2], ignored;
  napi_get_reference_value(env, a->callback, &callback);
  napi_get_global(env, &global);
  napi_get_null(env, &argv[0]);
  napi_get_null(env, &argv[1]);
  napi_value readings = status == napi_ok && a->ok ? batch_to_js(env, a->batch) : NULL;
  if (readings) {
    argv[1] = readings;
  } else {
    napi_value message;
    napi_create_string_utf8(env, status != napi_ok ? "checksum addon: the read was cancelled" : "checksum addon: out of memory", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &argv[0]);
  }
  napi_call_function(env, global, callback, 2, argv, &ignored);
  napi_delete_reference(env, a->callback);
  napi_delete_async_work(env, a->work);
  batch_free(a->batch);
  free(a);
}

static napi_value js_read_files_async(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], name;
  napi_valuetype type;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4 || napi_typeof(env, argv[3], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "checksum addon: readFilesAsync(paths, shallow, sizes, callback) needs a callback");
    return NULL;
  }
  bool shallow = false;
  napi_get_value_bool(env, argv[1], &shallow);
  batch_t *b = batch_from_js(env, argv[0], shallow, argv[2]);
  if (!b) return NULL;
  async_read_t *a = calloc(1, sizeof *a);
  if (!a) {
    batch_free(b);
    napi_throw_error(env, "ENOMEM", "checksum addon: out of memory");
    return NULL;
  }
  a->batch = b;
  napi_create_reference(env, argv[3], 1, &a->callback);
  napi_create_string_utf8(env, "comet:readFiles", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, async_execute, async_complete, a, &a->work);
  napi_queue_async_work(env, a->work);
  return NULL;
}

/* Gives the C heap's free memory back to the system (glibc keeps it otherwise): after a start that read and
 * parsed tens of megabytes, a resident agent would carry that peak for the rest of its life. */
static napi_value js_trim(napi_env env, napi_callback_info info) {
  napi_value result;
  napi_get_boolean(env, malloc_trim(0) == 1, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"readFiles", NULL, js_read_files, NULL, NULL, NULL, napi_default, NULL},
      {"readFilesAsync", NULL, js_read_files_async, NULL, NULL, NULL, napi_default, NULL},
      {"trimMemory", NULL, js_trim, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 3, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
