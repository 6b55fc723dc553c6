/* bench/peers/libuv/uv_queue_work.c - the offload round trip of bench/offload.cpp, with libuv.
 * Distributed under the Boost Software License, Version 1.0.
 *
 * libuv's thread pool is the one Node.js offloads to: uv_queue_work runs a work callback on a
 * pool thread, then the "after work" callback on the loop's thread. Here k chains (1 or 64) on
 * one uv_loop each start their next call from the after-work callback of the last, so the loop
 * thread submits every call and receives every completion, as in smartasync's case. The pool
 * has N threads: UV_THREADPOOL_SIZE, set before the first use (libuv reads it once).
 * Same method as bench/harness.hpp: calibrate until a run takes ~150 ms, several rounds,
 * median and min-max of wall time and of process CPU (user+sys, getrusage) per call, and the
 * share of the wall time the loop's thread was on a CPU (caller%), rows appended to --out in
 * the TSV format of the C++ programs; then the idle pool's CPU.
 */
#include <uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define VARIANT "libuv uv_queue_work"
#define MAX_INFLIGHT 64
#define MAX_ROUNDS 1000

/* The offloaded function: not inlined, its argument read through a volatile so the call is
 * made and not folded away. */
__attribute__((noinline)) static int trivial(int x) {
  volatile int v = x;
  return v + 1;
}

static volatile long sink; /* where results go, so nothing is optimised away */

struct chain {
  uv_work_t req; /* first member: the callbacks get back to the chain from the request */
  uv_loop_t* loop;
  size_t left;
  int arg;
  int result;
};

static void start_next(struct chain* c);

static void work_cb(uv_work_t* req) {
  struct chain* c = (struct chain*)req;
  c->result = trivial(c->arg);
}

static void after_work_cb(uv_work_t* req, int status) {
  struct chain* c = (struct chain*)req;
  if (status != 0) {
    fprintf(stderr, "uv_queue_work completed with %s\n", uv_strerror(status));
    exit(1);
  }
  sink += c->result;
  start_next(c);
}

static void start_next(struct chain* c) {
  if (c->left == 0)
    return;
  c->left--;
  c->arg = (int)c->left;
  const int rc = uv_queue_work(c->loop, &c->req, work_cb, after_work_cb);
  if (rc != 0) {
    fprintf(stderr, "uv_queue_work: %s\n", uv_strerror(rc));
    exit(1);
  }
}

/* `inflight` chains on the loop, n / inflight round trips each. */
static void drive(uv_loop_t* loop, size_t inflight, size_t n) {
  static struct chain chains[MAX_INFLIGHT];
  for (size_t k = 0; k < inflight; ++k) {
    memset(&chains[k], 0, sizeof chains[k]);
    chains[k].loop = loop;
    chains[k].left = n / inflight;
    start_next(&chains[k]);
  }
  uv_run(loop, UV_RUN_DEFAULT); /* returns once no request is left */
}

struct usage {
  double cpu; /* user + system seconds of the process */
  long sleeps; /* voluntary context switches */
};

static struct usage process_usage(void) {
  struct rusage u;
  memset(&u, 0, sizeof u);
  getrusage(RUSAGE_SELF, &u);
  struct usage r;
  r.cpu = (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec * 1e-6 + (double)u.ru_stime.tv_sec +
          (double)u.ru_stime.tv_usec * 1e-6;
  r.sleeps = u.ru_nvcsw;
  return r;
}

/* Seconds on `clock`: CLOCK_MONOTONIC for wall time, CLOCK_THREAD_CPUTIME_ID for the calling
 * thread's CPU time (the loop's, since uv_run runs on it). */
static double clock_seconds(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct sample {
  double wall, cpu, sleeps, loop_cpu;
  size_t ops;
};

static struct sample time_run(uv_loop_t* loop, size_t inflight, size_t ops) {
  const struct usage u0 = process_usage();
  const double loop0 = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
  const double t0 = clock_seconds(CLOCK_MONOTONIC);
  drive(loop, inflight, ops);
  struct sample s;
  s.wall = clock_seconds(CLOCK_MONOTONIC) - t0;
  s.loop_cpu = clock_seconds(CLOCK_THREAD_CPUTIME_ID) - loop0;
  const struct usage u1 = process_usage();
  s.cpu = u1.cpu - u0.cpu;
  s.sleeps = (double)(u1.sleeps - u0.sleeps);
  s.ops = ops;
  return s;
}

static int by_value(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

struct spread {
  double median, min, max;
};

/* Median (mean of the middle two for an even count), min and max; sorts v. */
static struct spread summarize(double* v, size_t n) {
  qsort(v, n, sizeof *v, by_value);
  struct spread s;
  s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  s.min = v[0];
  s.max = v[n - 1];
  return s;
}

static void usage_exit(const char* program) {
  fprintf(stderr, "usage: %s [--quick] [--pool N] [--rounds N] [--out results.tsv]\n", program);
  exit(2);
}

static long positive(const char* program, const char* text) {
  char* end = NULL;
  const long v = strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || v <= 0)
    usage_exit(program);
  return v;
}

int main(int argc, char** argv) {
  long pool = 1, rounds = 10;
  double target = 0.15, idle_seconds = 1.0;
  int quick = 0;
  const char* out = NULL;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--quick") == 0)
      quick = 1;
    else if (strcmp(argv[i], "--pool") == 0 && i + 1 < argc)
      pool = positive(argv[0], argv[++i]);
    else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
      rounds = positive(argv[0], argv[++i]);
    else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
      out = argv[++i];
    else
      usage_exit(argv[0]);
  }
  if (rounds > MAX_ROUNDS) {
    fprintf(stderr, "--rounds: at most %d\n", MAX_ROUNDS);
    return 2;
  }
  if (quick) {
    rounds = rounds < 3 ? rounds : 3;
    target = 0.02;
    idle_seconds = 0.3;
  }

  /* Before anything touches the pool: libuv sizes it once, at the first queued work. */
  char size[32];
  snprintf(size, sizeof size, "%ld", pool);
  setenv("UV_THREADPOOL_SIZE", size, 1);

  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) {
    fprintf(stderr, "uv_loop_init failed\n");
    return 1;
  }
  FILE* file = out ? fopen(out, "a") : NULL;
  if (out && !file) {
    perror(out);
    return 1;
  }
  printf("# libuv %s uv_queue_work round trip of a trivial function (%ld rounds, medians)\n",
         uv_version_string(), rounds);

  static const size_t inflights[] = {1, MAX_INFLIGHT};
  for (size_t f = 0; f < 2; ++f) {
    const size_t inflight = inflights[f];
    /* Calibrate as bench::alternate does: warm up and grow until a run takes a tenth of the
     * target, then size the runs for the target, in whole batches of 64. */
    size_t n = 16, ops = 0;
    for (;;) {
      const struct sample s = time_run(&loop, inflight, n);
      if (s.wall >= target / 10 || n >= ((size_t)1 << 30)) {
        double per_op = s.wall / (double)n;
        if (per_op < 1e-10)
          per_op = 1e-10;
        ops = (size_t)(target / per_op);
        if (ops < 64)
          ops = 64;
        ops = (ops + 63) / 64 * 64;
        break;
      }
      n *= 4;
    }
    static double t[MAX_ROUNDS], cpu[MAX_ROUNDS], sleeps[MAX_ROUNDS], busy[MAX_ROUNDS];
    for (long r = 0; r < rounds; ++r) {
      const struct sample s = time_run(&loop, inflight, ops);
      t[r] = s.wall * 1e9 / (double)s.ops;
      cpu[r] = s.cpu * 1e9 / (double)s.ops;
      sleeps[r] = s.sleeps / (double)s.ops;
      busy[r] = 100.0 * s.loop_cpu / s.wall;
    }
    const struct spread st = summarize(t, (size_t)rounds);
    const struct spread sc = summarize(cpu, (size_t)rounds);
    const struct spread ss = summarize(sleeps, (size_t)rounds);
    const struct spread sb = summarize(busy, (size_t)rounds);
    char group[64];
    snprintf(group, sizeof group, "peers, %zu in flight, pool of %ld", inflight, pool);
    printf("\n## %s\n", group);
    printf("%-34s %12s %12s %12s %12s %10s %10s %7s\n", "variant", "median ns/op", "min", "max",
           "ops/s (med)", "cpu ns/op", "sleeps/op", "caller%");
    printf("%-34s %12.1f %12.1f %12.1f %12.0f %10.0f %10.3f %7.0f\n", VARIANT, st.median, st.min,
           st.max, 1e9 / st.median, sc.median, ss.median, sb.median);
    if (file) {
      fprintf(file, "%s\t%s\tns_per_op\t%.6g\t%.6g\t%.6g\tns\n", group, VARIANT, st.median, st.min, st.max);
      fprintf(file, "%s\t%s\tcpu_ns_per_op\t%.6g\t%.6g\t%.6g\tns\n", group, VARIANT, sc.median, sc.min, sc.max);
      fprintf(file, "%s\t%s\tsleeps_per_op\t%.6g\t%.6g\t%.6g\t\n", group, VARIANT, ss.median, ss.min, ss.max);
      fprintf(file, "%s\t%s\tcaller_busy\t%.6g\t%.6g\t%.6g\t%%\n", group, VARIANT, sb.median, sb.min, sb.max);
    }
  }

  /* The idle pool right after a burst of 1000 sequential round trips: its threads wait on a
   * condition variable, and any spinning would show here. */
  drive(&loop, 1, 1000);
  const struct usage u0 = process_usage();
  const double t0 = clock_seconds(CLOCK_MONOTONIC);
  const struct timespec pause = {(time_t)idle_seconds, (long)((idle_seconds - (double)(time_t)idle_seconds) * 1e9)};
  nanosleep(&pause, NULL);
  const double idle =
      100.0 * (process_usage().cpu - u0.cpu) / (clock_seconds(CLOCK_MONOTONIC) - t0);
  printf("\nidle CPU over %.1f s after a burst, pool of %ld: %.2f %% of one core\n", idle_seconds, pool, idle);
  if (file) {
    fprintf(file, "peers, idle after a burst, pool of %ld\t%s\tcpu_percent\t%.6g\t%.6g\t%.6g\t%%\n", pool,
            VARIANT, idle, idle, idle);
    fclose(file);
  }
  uv_loop_close(&loop);
  return 0;
}
