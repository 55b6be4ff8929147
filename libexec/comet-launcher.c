/*
 * comet-launcher: the compiled twin of comet-launcher.sh, with the same protocol on stdin and stdout.
 *
 * Why it exists: fencing latency is the product. Forking the large Node process costs milliseconds; this small
 * process, started in advance, vforks and execs /bin/sh -c <procedure> in a fraction of that, and reaps each
 * procedure itself so that its exit status reaches the agent.
 *
 * Requests (stdin, one field per line):
 *   P <index> <line count> <lines...>
 *   R <index> <run id> <output file> <env count> <NAME=value lines...>
 *   W <directory>     keep a standby shell, its output file in <directory> (the shell launcher ignores it)
 * Replies (stdout): "S <run id> <pid>" when started, "E <run id> <status>" when ended (128+n: signal n).
 * End of stdin ends the launcher, never the procedures it started.
 *
 * The standby shell: exec'ing /bin/sh and its start-up cost about a third of the time from a sentinel's change to
 * its procedure's first instruction (measured: about 0.8 ms of 2.2 ms). So the launcher keeps one /bin/sh started
 * in advance, in its own process group, its output going to a file of its own and its stdin /dev/null, blocked on
 * reading a script from a pipe (`. /dev/fd/3`). A run hands it the run's variables as `export` lines and the
 * procedure's text, closes the pipe, and renames the output file to the run's. The first run of a burst takes the
 * standby shell; the others, and any run when it is not there, are started as before (vfork, exec /bin/sh -c).
 * A new standby shell is started once the launcher has had no request for STANDBY_DELAY_MS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_PROCEDURES 4096
#define MAX_RUNS 4096
#define MAX_ENV 64
/* Quiet time before a new standby shell is started: it must not compete for the CPU with a procedure starting. */
#define STANDBY_DELAY_MS 10
#define STANDBY_RETRY_MAX_MS 60000

static char *procedures[MAX_PROCEDURES];
static struct { pid_t pid; char *run; } runs[MAX_RUNS];

/* One line of a request must fit: the agent sends procedures of up to 128 KiB (one argument of sh -c). */
static char buffer[1 << 18];
static size_t filled = 0, start = 0;
static int input_closed = 0;

static struct {
  char *directory;  /* NULL: no standby shell wanted (W not received) */
  pid_t pid;        /* 0: none running */
  int script;       /* the write end of its script pipe */
  char output[4096];
  unsigned serial;
  long long due_ms; /* when to start the next one */
  long retry_ms;    /* after a standby shell that died unused: the back-off, doubled each time */
} standby = {.script = -1};

static long long now_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* In a child, before it execs a shell: the launcher ignores SIGPIPE and blocks SIGCHLD for itself, and both
 * would survive the exec, so that `producer | head` in a procedure would not end its producer as under sh -c. */
static void default_signals(void) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
}

/* dup2 keeps FD_CLOEXEC when both numbers are the same: the child must inherit `from` as `to` either way. */
static void move_fd(int from, int to) {
  if (from == to) fcntl(to, F_SETFD, 0);
  else dup2(from, to);
}

/* vfork, then exec /bin/sh with argv and envp in a process group of its own (so that a hung procedure can be
 * killed with everything it started): stdin from `in`, stdout and stderr to `out`, and `script`, unless -1, as
 * descriptor 3. The child's pid, or -1. */
static pid_t spawn_shell(char **argv, char **envp, int in, int out, int script) {
  pid_t pid = vfork();
  if (pid == 0) {
    setpgid(0, 0);
    move_fd(in, 0);
    move_fd(out, 1);
    move_fd(out, 2);
    if (script >= 0) move_fd(script, 3);
    default_signals();
    execve("/bin/sh", argv, envp);
    _exit(127);
  }
  return pid;
}

static void standby_backoff(void) {
  standby.retry_ms = standby.retry_ms ? standby.retry_ms * 2 : 1000;
  if (standby.retry_ms > STANDBY_RETRY_MAX_MS) standby.retry_ms = STANDBY_RETRY_MAX_MS;
  standby.due_ms = now_ms() + standby.retry_ms;
}

static void start_standby(void) {
  if (!standby.directory || standby.pid > 0) return;
  int fits = snprintf(standby.output, sizeof standby.output, "%s/standby-%ld-%u.out", standby.directory, (long)getpid(), standby.serial++);
  if (fits < 0 || (size_t)fits >= sizeof standby.output) {
    standby.directory = NULL; /* a directory too long for a path: no standby shell, ever */
    return;
  }
  int out = open(standby.output, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int script[2] = {-1, -1};
  pid_t pid = -1;
  if (out >= 0 && devnull >= 0 && pipe2(script, O_CLOEXEC) == 0) {
    char *argv[] = {"sh", "-c", ". /dev/fd/3", NULL};
    pid = spawn_shell(argv, environ, devnull, out, script[0]);
  }
  if (out >= 0) close(out);
  if (devnull >= 0) close(devnull);
  if (script[0] >= 0) close(script[0]);
  if (pid > 0) {
    standby.pid = pid;
    standby.script = script[1];
    return;
  }
  if (script[1] >= 0) close(script[1]);
  if (out >= 0) unlink(standby.output);
  standby_backoff();
}

/* Ends the standby shell, unused: end of input makes it exit, having run nothing. */
static void stop_standby(void) {
  if (standby.pid <= 0) return;
  /* Unlinked first: once the pipe is closed the shell ends, and whoever waits for it may look for the file. */
  unlink(standby.output);
  close(standby.script);
  standby.script = -1;
  standby.pid = 0;
}

static int is_name(const char *text, size_t length) {
  if (length == 0 || !(text[0] == '_' || (text[0] >= 'A' && text[0] <= 'Z') || (text[0] >= 'a' && text[0] <= 'z'))) return 0;
  for (size_t i = 1; i < length; i++)
    if (!(text[i] == '_' || (text[i] >= 'A' && text[i] <= 'Z') || (text[i] >= 'a' && text[i] <= 'z') || (text[i] >= '0' && text[i] <= '9'))) return 0;
  return 1;
}

/* The script for the standby shell: the run's variables, single-quoted (nothing in them is expanded), then the
 * procedure. NULL if a variable's name is not a shell name: that run is started the usual way. */
static char *standby_script(const char *text, char **assignments, size_t count, size_t *length) {
  static const char prologue[] = "exec 3<&-\n";
  size_t size = sizeof prologue + strlen(text) + 2;
  for (size_t i = 0; i < count; i++) size += strlen(assignments[i]) * 4 + 16;
  char *script = malloc(size);
  if (!script) return NULL;
  char *end = stpcpy(script, prologue);
  for (size_t i = 0; i < count; i++) {
    const char *equals = strchr(assignments[i], '=');
    if (!equals || !is_name(assignments[i], (size_t)(equals - assignments[i]))) { free(script); return NULL; }
    end = stpcpy(end, "export ");
    memcpy(end, assignments[i], (size_t)(equals - assignments[i]) + 1);
    end += equals - assignments[i] + 1;
    *end++ = '\'';
    for (const char *c = equals + 1; *c; c++) {
      if (*c == '\'') end = stpcpy(end, "'\\''");
      else *end++ = *c;
    }
    end = stpcpy(end, "'\n");
  }
  end = stpcpy(end, text);
  *end++ = '\n';
  *length = (size_t)(end - script);
  return script;
}

/* Hands the run to the standby shell; its pid, or -1 when the run must be started the usual way. */
static pid_t run_in_standby(const char *text, char **assignments, size_t count, const char *output) {
  if (standby.pid <= 0) return -1;
  size_t length = 0;
  char *script = standby_script(text, assignments, count, &length);
  if (!script) return -1;
  /* The shell runs the script as it reads it: a script the empty pipe cannot take whole would hold the launcher
   * (no other run started, no end reported) while the procedure runs, so it is started the usual way. */
  int capacity = fcntl(standby.script, F_GETPIPE_SZ);
  if (length > (size_t)(capacity > 0 ? capacity : 4096)) {
    free(script);
    return -1;
  }
  pid_t pid = standby.pid;
  int fd = standby.script;
  standby.pid = 0;
  standby.script = -1;
  size_t done = 0;
  while (done < length) {
    ssize_t written = write(fd, script + done, length - done);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) break;
    done += (size_t)written;
  }
  free(script);
  close(fd);
  if (done == 0) {
    /* No reader (EPIPE): the shell died before it could run anything; make sure of it, and start the run anew. */
    kill(pid, SIGKILL);
    unlink(standby.output);
    return -1;
  }
  /* Some of the script reached the shell: it may have run part of the procedure, which must never run twice. Its
   * end, whatever it was, is the run's. */
  if (rename(standby.output, output) != 0)
    fprintf(stderr, "comet-launcher: the output of run pid %ld stays in %s: cannot rename it to %s (%s)\n", (long)pid, standby.output, output, strerror(errno));
  standby.retry_ms = 0;
  return pid;
}

/* Returns the next line (without its newline) if one is complete in the buffer, else NULL. */
static char *take_line(void) {
  char *newline = memchr(buffer + start, '\n', filled - start);
  if (!newline) return NULL;
  *newline = '\0';
  char *line = buffer + start;
  start = (size_t)(newline - buffer) + 1;
  return line;
}

/* Reads more input; returns 0 on end of input. */
static int fill(void) {
  if (start > 0) {
    memmove(buffer, buffer + start, filled - start);
    filled -= start;
    start = 0;
  }
  if (filled == sizeof buffer) return 0; /* a request larger than the buffer: refuse by ending */
  ssize_t count;
  do count = read(0, buffer + filled, sizeof buffer - filled); while (count < 0 && errno == EINTR);
  if (count <= 0) return 0;
  filled += (size_t)count;
  return 1;
}

/* Blocks until a whole line is there (requests arrive whole: the agent writes each in one call). */
static char *next_line(void) {
  char *line;
  while (!(line = take_line()))
    if (!fill()) return NULL;
  return line;
}

static void reply(const char *verb, const char *run, long value) {
  char line[256];
  int length = snprintf(line, sizeof line, "%s %s %ld\n", verb, run, value);
  if (length > 0 && write(1, line, (size_t)length) < 0) { /* the agent is gone: keep fencing regardless */ }
}

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid == standby.pid) {
      /* Died before it was used (killed, or no /dev/fd): another is started later, backing off. */
      stop_standby();
      standby_backoff();
      fprintf(stderr, "comet-launcher: the standby shell (pid %ld) ended unused (status %d); procedures start without it until another is started in %ld s\n",
              (long)pid, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), standby.retry_ms / 1000);
      continue;
    }
    for (int i = 0; i < MAX_RUNS; i++) {
      if (runs[i].pid != pid) continue;
      long code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      reply("E", runs[i].run, code);
      free(runs[i].run);
      runs[i].pid = 0;
      runs[i].run = NULL;
      break;
    }
  }
}

static int handle_request(const char *verb) {
  if (strcmp(verb, "P") == 0) {
    char *field = next_line(); if (!field) return 0;
    long index = strtol(field, NULL, 10);
    field = next_line(); if (!field) return 0;
    long count = strtol(field, NULL, 10);
    size_t size = 0;
    char *text = NULL;
    for (long n = 0; n < count; n++) {
      char *line = next_line(); if (!line) { free(text); return 0; }
      size_t length = strlen(line);
      text = realloc(text, size + length + 2);
      memcpy(text + size, line, length);
      size += length;
      text[size++] = '\n';
      text[size] = '\0';
    }
    if (index >= 0 && index < MAX_PROCEDURES) {
      free(procedures[index]);
      procedures[index] = text ? text : strdup("");
    } else free(text);
    return 1;
  }
  if (strcmp(verb, "R") == 0) {
    char *field = next_line(); if (!field) return 0;
    long index = strtol(field, NULL, 10);
    char *run = next_line(); if (!run) return 0;
    run = strdup(run);
    char *output = next_line(); if (!output) return 0;
    output = strdup(output);
    field = next_line(); if (!field) return 0;
    long count = strtol(field, NULL, 10);
    size_t inherited = 0;
    while (environ[inherited]) inherited++;
    char **envp = calloc(inherited + MAX_ENV + 1, sizeof *envp);
    size_t used = 0;
    for (long n = 0; n < count; n++) {
      char *line = next_line(); if (!line) return 0;
      if (n < MAX_ENV) envp[used++] = strdup(line);
    }
    /* The run's own variables win over the launcher's inherited ones of the same name. */
    size_t own = used;
    for (size_t i = 0; i < inherited; i++) {
      const char *equals = strchr(environ[i], '=');
      size_t name = equals ? (size_t)(equals - environ[i]) + 1 : strlen(environ[i]);
      int overridden = 0;
      for (size_t j = 0; j < own && !overridden; j++) overridden = strncmp(envp[j], environ[i], name) == 0;
      if (!overridden) envp[used++] = environ[i];
    }
    envp[used] = NULL;
    const char *text = index >= 0 && index < MAX_PROCEDURES ? procedures[index] : NULL;
    pid_t pid = text ? run_in_standby(text, envp, own, output) : -1;
    /* The next standby shell waits for a quiet moment (and never comes sooner than a back-off says). */
    if (standby.due_ms < now_ms() + STANDBY_DELAY_MS) standby.due_ms = now_ms() + STANDBY_DELAY_MS;
    int out = pid > 0 ? -1 : open(output, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    int devnull = pid > 0 ? -1 : open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (pid <= 0 && text && out >= 0 && devnull >= 0) {
      char *argv[] = {"sh", "-c", (char *)text, NULL};
      pid = spawn_shell(argv, envp, devnull, out, -1);
    }
    if (out >= 0) close(out);
    if (devnull >= 0) close(devnull);
    for (long n = 0; n < count && n < MAX_ENV; n++) free(envp[n]);
    free(envp);
    free(output);
    if (pid > 0) {
      reply("S", run, pid);
      for (int i = 0; i < MAX_RUNS; i++)
        if (runs[i].pid == 0) { runs[i].pid = pid; runs[i].run = run; run = NULL; break; }
    } else reply("E", run, 127);
    free(run);
    return 1;
  }
  if (strcmp(verb, "W") == 0) {
    char *directory = next_line(); if (!directory) return 0;
    if (!standby.directory) {
      standby.directory = strdup(directory);
      standby.due_ms = now_ms();
    }
    return 1;
  }
  return 1; /* unknown verbs are ignored, as in the shell launcher */
}

int main(void) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int children = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  signal(SIGPIPE, SIG_IGN);
  /* A session of its own, and so an autogroup of its own for the scheduler: the procedures it starts do not share
   * their CPU share with the agent, which is busy recording the incident just as they start (measured: 0.3 ms of
   * a 2.5 ms detection-to-fence p50 on two cores). It also keeps a terminal's Ctrl-C, meant for the agent, from
   * killing the launcher, which ends when the agent closes its stdin. */
  setsid();
  for (;;) {
    char *verb;
    while ((verb = take_line()))
      if (!handle_request(verb)) { input_closed = 1; break; }
    if (input_closed) break;
    int timeout = -1;
    if (standby.directory && standby.pid <= 0) {
      if (standby.due_ms <= now_ms()) start_standby();
      /* Not started (no directory yet, no descriptor left): try again when the back-off says. */
      if (standby.directory && standby.pid <= 0) {
        long long wait = standby.due_ms - now_ms();
        timeout = wait > 0 ? (int)wait : 0;
      }
    }
    struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = children, .events = POLLIN}};
    if (poll(fds, 2, timeout) < 0) { if (errno == EINTR) continue; break; }
    if (fds[1].revents & POLLIN) {
      struct signalfd_siginfo info;
      while (read(children, &info, sizeof info) == sizeof info) {}
      reap();
    }
    if (fds[0].revents & (POLLIN | POLLHUP)) {
      if (!fill()) break;
    }
  }
  stop_standby();
  return 0;
}
