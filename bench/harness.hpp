// bench/harness.hpp - the small measurement kit shared by smartasync's benchmark programs.
// Distributed under the Boost Software License, Version 1.0.
//
// Why not Google Benchmark: every comparison here must alternate the library and its baseline
// inside one process (A, B, A, B, ...) and report the median and the spread over those rounds.
// That is a dozen lines of our own, and it keeps the programs free of extra dependencies.
#ifndef SMARTASYNC_BENCH_HARNESS_HPP
#define SMARTASYNC_BENCH_HARNESS_HPP

#include <fmt/format.h>

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace bench {

// Keeps `value` alive and forces the compiler to assume memory changed (the usual
// "do not optimise" barrier): loads cannot be hoisted out of the measured loop.
template <typename T>
inline void keep(T const& value) noexcept {
  asm volatile("" : : "r,m"(value) : "memory");
}

using clock = std::chrono::steady_clock;

inline double seconds_since(clock::time_point start) {
  return std::chrono::duration<double>(clock::now() - start).count();
}

// What the whole process has used so far: user + system CPU time, in seconds, and how often a
// thread of it went to sleep (voluntary context switches): each sleep is a wake-up someone pays
// for later, the cost a pool's design is about.
struct process_usage {
  double cpu_seconds = 0;
  long sleeps = 0;

  static process_usage now() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    auto sec = [](const timeval& tv) { return double(tv.tv_sec) + double(tv.tv_usec) * 1e-6; };
    return {sec(usage.ru_utime) + sec(usage.ru_stime), usage.ru_nvcsw};
  }
};

// User + system CPU time of the whole process, in seconds.
inline double process_cpu_seconds() { return process_usage::now().cpu_seconds; }

// CPU time of the calling thread, in seconds.
inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// Peak resident set size of this process, in bytes.
inline long peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss * 1024L;
}

// CPU used by a pool with nothing to do, right after a burst of work, in % of one core over
// `seconds` (any spinning shows).
template <typename Pool, typename Burst>
double idle_cpu_percent(Pool& pool, Burst burst, double seconds) {
  burst(pool);
  const double cpu0 = process_cpu_seconds();
  const auto t0 = clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  return 100.0 * (process_cpu_seconds() - cpu0) / seconds_since(t0);
}

// One timed run of `ops` operations.
struct sample {
  double wall = 0; // seconds
  double cpu = 0;  // process user+sys seconds
  long sleeps = 0; // process_usage::sleeps during the run
  double caller_cpu = 0; // CPU seconds of the thread that ran it (the event loop, in most tables)
  std::size_t ops = 0;
  double ns_per_op() const { return wall * 1e9 / double(ops); }
  double cpu_ns_per_op() const { return cpu * 1e9 / double(ops); }
  double sleeps_per_op() const { return double(sleeps) / double(ops); }
  double caller_busy_percent() const { return 100.0 * caller_cpu / wall; }
};

template <typename F>
sample time_run(std::size_t ops, F&& run) {
  const process_usage usage0 = process_usage::now();
  const double caller0 = thread_cpu_seconds();
  const auto t0 = clock::now();
  run(ops);
  sample s;
  s.wall = seconds_since(t0);
  s.caller_cpu = thread_cpu_seconds() - caller0;
  const process_usage usage1 = process_usage::now();
  s.cpu = usage1.cpu_seconds - usage0.cpu_seconds;
  s.sleeps = usage1.sleeps - usage0.sleeps;
  s.ops = ops;
  return s;
}

struct spread {
  double median = 0, min = 0, max = 0;
};

inline spread summarize(std::vector<double> v) {
  spread s;
  if (v.empty())
    return s;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  s.min = v.front();
  s.max = v.back();
  return s;
}

// Command-line settings shared by every program: --quick (CI smoke pass) and --out FILE
// (machine-readable results, one row per metric, appended).
struct options {
  bool quick = false;
  std::string out;
  std::string data_dir = "."; // where programs that keep raw samples write them
  std::string only;            // run only the tables whose title contains this text
  bool wanted(std::string_view title) const {
    return only.empty() || title.find(only) != std::string_view::npos;
  }
  int rounds = 10; // a whole Williams cycle for 5 contenders, nearly one for 3, 4 and 6
  double target_seconds = 0.15; // wall time of one timed run

  static options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      if (arg == "--quick") {
        o.quick = true;
      } else if (arg == "--out" && i + 1 < argc) {
        o.out = argv[++i];
      } else if (arg == "--data" && i + 1 < argc) {
        o.data_dir = argv[++i];
      } else if (arg == "--only" && i + 1 < argc) {
        o.only = argv[++i];
      } else if (arg == "--rounds" && i + 1 < argc) {
        o.rounds = std::max(1, std::atoi(argv[++i]));
      } else {
        fmt::print(stderr, "usage: {} [--quick] [--rounds N] [--out results.tsv] [--data DIR] [--only TITLE-PART]\n", argv[0]);
        std::exit(2);
      }
    }
    if (o.quick) {
      o.rounds = std::min(o.rounds, 3);
      o.target_seconds = 0.02;
    }
    return o;
  }
};

// Appends "group<TAB>variant<TAB>metric<TAB>median<TAB>min<TAB>max<TAB>unit" rows to --out.
class results {
public:
  explicit results(const options& o) : file_(o.out.empty() ? nullptr : std::fopen(o.out.c_str(), "a")) {}
  results(const results&) = delete;
  results& operator=(const results&) = delete;
  ~results() {
    if (file_)
      std::fclose(file_);
  }

  void add(std::string_view group, std::string_view variant, std::string_view metric, spread s,
           std::string_view unit) {
    if (file_)
      fmt::print(file_, "{}\t{}\t{}\t{:.6g}\t{:.6g}\t{:.6g}\t{}\n", group, variant, metric, s.median,
                 s.min, s.max, unit);
  }
  void add(std::string_view group, std::string_view variant, std::string_view metric, double v,
           std::string_view unit) {
    add(group, variant, metric, spread{v, v, v}, unit);
  }

private:
  std::FILE* file_;
};

// A contender in an alternating comparison: runs `ops` operations when called.
struct contender {
  std::string name;
  std::function<void(std::size_t ops)> run;
  std::size_t ops = 0; // calibrated so one run takes about options::target_seconds
  std::vector<sample> samples;
};

// The order of contenders in round `round` of a Williams design: over n rounds (2n when n is
// odd) each contender runs in every position equally often and directly after every other one
// equally often. Plain rotation keeps the cyclic order, so one contender would always run
// right after the same other one, and inherit whatever that one leaves behind (64 threads
// just exited, a pool's worker still spinning, a cold cache).
inline std::vector<std::size_t> williams_order(std::size_t n, std::size_t round) {
  std::vector<std::size_t> first; // 0, 1, n-1, 2, n-2, ...
  for (std::size_t low = 0, high = n; first.size() < n;) {
    first.push_back(low++);
    if (first.size() < n)
      first.push_back(--high % n);
  }
  const std::size_t shift = round % n;
  std::vector<std::size_t> order;
  for (std::size_t c : first)
    order.push_back((c + shift) % n);
  if (n % 2 == 1 && (round / n) % 2 == 1)
    std::reverse(order.begin(), order.end());
  return order;
}

// Calibrates each contender, then runs them in rounds, in the orders of a Williams design, so
// drift in the machine's state and what one contender leaves behind for the next hit all of
// them alike. The first contender is "ours"; the others are baselines.
inline void alternate(std::vector<contender>& cs, const options& o) {
  for (auto& c : cs) {
    std::size_t n = 16;
    for (;;) { // warm up and grow until a run takes a tenth of the target
      const sample s = time_run(n, c.run);
      if (s.wall >= o.target_seconds / 10 || n >= (std::size_t{1} << 30)) {
        const double per_op = std::max(s.wall / double(n), 1e-10);
        c.ops = std::max<std::size_t>(64, std::size_t(o.target_seconds / per_op));
        c.ops = (c.ops + 63) / 64 * 64; // whole batches for the 64-in-flight drivers
        break;
      }
      n *= 4;
    }
  }
  for (int r = 0; r < o.rounds; ++r)
    for (std::size_t k : williams_order(cs.size(), std::size_t(r))) {
      auto& c = cs[k];
      c.samples.push_back(time_run(c.ops, c.run));
    }
}

// The spread of one per-sample measure over a contender's rounds.
template <typename Measure>
spread over_rounds(const contender& c, Measure measure) {
  std::vector<double> v;
  for (auto& s : c.samples)
    v.push_back((s.*measure)());
  return summarize(v);
}

inline spread ns_per_op(const contender& c) { return over_rounds(c, &sample::ns_per_op); }

// Median over rounds of (ours / baseline) measured in the same round: drift cancels out.
inline spread paired_ratio(const contender& ours, const contender& base) {
  std::vector<double> v;
  for (std::size_t i = 0; i < std::min(ours.samples.size(), base.samples.size()); ++i)
    v.push_back(ours.samples[i].ns_per_op() / base.samples[i].ns_per_op());
  return summarize(v);
}

// Prints a table of the contenders (ours first) and records it in `out` under `group`.
inline void report(std::string_view group, const std::vector<contender>& cs, results& out,
                   bool show_rate = true) {
  fmt::print("\n## {}\n", group);
  fmt::print("{:<34} {:>12} {:>12} {:>12} {:>12} {:>10} {:>10} {:>8} {:>16}\n", "variant",
             "median ns/op", "min", "max", "ops/s (med)", "cpu ns/op", "sleeps/op", "caller%",
             "ours/this (min-max)");
  for (std::size_t i = 0; i < cs.size(); ++i) {
    const auto& c = cs[i];
    const spread t = ns_per_op(c);
    const spread cpu = over_rounds(c, &sample::cpu_ns_per_op);
    const spread sleeps = over_rounds(c, &sample::sleeps_per_op);
    const spread caller = over_rounds(c, &sample::caller_busy_percent);
    std::string ratio = "-";
    if (i > 0) {
      const spread r = paired_ratio(cs[0], c);
      ratio = fmt::format("{:.2f} ({:.2f}-{:.2f})", r.median, r.min, r.max);
      out.add(group, c.name, "ratio_ours_over", r, "x");
    }
    fmt::print("{:<34} {:>12.1f} {:>12.1f} {:>12.1f} {:>12.0f} {:>10.0f} {:>10.3f} {:>8.0f} {:>16}\n",
               c.name, t.median, t.min, t.max, show_rate ? 1e9 / t.median : 0.0, cpu.median,
               sleeps.median, caller.median, ratio);
    out.add(group, c.name, "ns_per_op", t, "ns");
    out.add(group, c.name, "cpu_ns_per_op", cpu, "ns");
    out.add(group, c.name, "sleeps_per_op", sleeps, "");
    out.add(group, c.name, "caller_busy", caller, "%");
  }
  std::fflush(stdout);
}

} // namespace bench

#endif // SMARTASYNC_BENCH_HARNESS_HPP
