// fuzz/state_machine.fuzz.cpp - the library's operations as a state machine, driven by a fuzzer.
// Distributed under the Boost Software License, Version 1.0.
//
// Each input is a short program (at most 64 steps) over real objects: pools (fixed and elastic,
// tiny queues, both full policies), serial lanes and keyed lanes, smart_async wrappers, event
// loops, streams. Its steps submit calls from the fuzzing thread, from event loops and from
// pool workers (nested), cancel them (partial or terminal, at any point of their life), give
// them deadlines and timeouts, block_on them, shut pools down and destroy pools, lanes and
// loops in any order relative to what is still in flight. Calls "work" by waiting on gates the
// input opens (never longer than about a millisecond), so no input takes long.
//
// After every input it checks, and aborts with the name of the broken invariant:
//  * every call completed exactly once, with an outcome its history allows (a value only from
//    a call that ran on a pool that was not stopped before it was submitted, deadline_expired
//    and pool_stopped only for calls that never started, queue_full only where a policy
//    rejects, a dropped handler only when its event loop was destroyed);
//  * each pool's counters add up: submitted == completed + failed + cancelled + rejected +
//    expired + timed_out, with nothing queued, parked or running once it is shut down;
//  * no pool ever holds more than queue_capacity queued calls, nor runs more than max_threads;
//  * a lane runs one call at a time, each submitter's calls in the order it submitted them;
//  * the process has as many threads and descriptors after the input as before it (a thread
//    still on its way out 5 s after the input gets 20 s more: see describe_threads_not_in).
#include "smartasync/smartasync.hpp"

#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(system_executor.hpp)

#include <fuzzer/FuzzedDataProvider.h>

#include <sanitizer/common_interface_defs.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <unistd.h>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace sa = smartasync;
namespace asio = smartasync::asio;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

[[noreturn]] void violated(const char* invariant, int id = -1) {
  std::fprintf(stderr, "\nstate_machine: invariant violated: %s (operation %d)\n", invariant, id);
  std::fflush(stderr);
  std::abort();
}
#define FUZZ_CHECK(cond, invariant, id)                                                            \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      violated(invariant, id);                                                                     \
  } while (0)

// Calls `f` with the name of each entry of `dir` (a /proc listing: threads, descriptors).
template <typename F>
void for_each_entry(const char* dir, F f) {
  if (DIR* d = opendir(dir)) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.')
        f(e->d_name);
    closedir(d);
  }
}

std::size_t count_entries(const char* dir) {
  std::size_t n = 0;
  for_each_entry(dir, [&](const char*) { ++n; });
  return n;
}

// The ids of the process's threads (its tasks), sorted.
std::vector<pid_t> thread_ids() {
  std::vector<pid_t> ids;
  for_each_entry("/proc/self/task",
                 [&](const char* name) { ids.push_back(static_cast<pid_t>(std::atoi(name))); });
  std::sort(ids.begin(), ids.end());
  return ids;
}

// A thread asked for its stack (print_stack_of: one that outlived its input, a pool's deleter
// that takes long) prints it itself: what it still waits for. (Not async-signal-safe; used only
// when something already went wrong.)
extern "C" void print_own_stack(int) {
  std::fprintf(stderr, "\nthread %ld:\n", static_cast<long>(gettid()));
  __sanitizer_print_stack_trace();
}

void print_stack_of(pid_t tid) {
  std::signal(SIGUSR2, print_own_stack);
  tgkill(getpid(), tid, SIGUSR2);
  std::this_thread::sleep_for(200ms); // its stack, before the next one's
}

// When each thread that ran the harness's code (the pools' workers, the loops) finished its
// function: its thread-locals are destroyed then, before the C library and the sanitizer tear
// the thread down. Tells a thread that was still working from one that was only slow to end.
std::mutex ended_mutex;
std::map<pid_t, clock_type::time_point>& ended_threads() {
  static auto* ended = new std::map<pid_t, clock_type::time_point>; // outlives every thread
  return *ended;
}
struct end_witness {
  ~end_witness() {
    std::lock_guard lock(ended_mutex);
    ended_threads()[gettid()] = clock_type::now();
  }
};
void witness_end_of_this_thread() {
  thread_local end_witness witness;
  (void)witness;
}

std::string read_proc(pid_t tid, const char* what) {
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/" + what;
  std::string text;
  if (std::FILE* f = std::fopen(path.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
      text.append(buf, n);
    std::fclose(f);
  }
  while (!text.empty() && text.back() == '\n')
    text.pop_back();
  return text;
}

// A thread's scheduling state as the kernel reports it: 'R' running or runnable, 'S' asleep,
// 'D' in an uninterruptible wait, ...; and when it started, in seconds since boot.
struct kernel_view {
  char state = '?';
  double started = -1;
};
kernel_view kernel_view_of(pid_t tid) {
  kernel_view view;
  const std::string stat = read_proc(tid, "stat");
  // After the name's closing parenthesis: state (field 3) ... starttime (field 22).
  const auto close = stat.rfind(')');
  if (close == std::string::npos)
    return view;
  std::vector<std::string> fields;
  std::size_t at = close + 2;
  while (at < stat.size()) {
    const auto space = stat.find(' ', at);
    fields.push_back(stat.substr(at, space - at));
    if (space == std::string::npos)
      break;
    at = space + 1;
  }
  if (fields.size() > 19) {
    view.state = fields[0][0];
    view.started = std::stod(fields[19]) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return view;
}

double seconds_since_boot() {
  double uptime = 0;
  if (std::FILE* f = std::fopen("/proc/uptime", "r")) {
    if (std::fscanf(f, "%lf", &uptime) != 1)
      uptime = 0;
    std::fclose(f);
  }
  return uptime;
}

// When the thread's function returned, if it ran the harness's code and has.
std::optional<clock_type::time_point> function_returned(pid_t tid) {
  std::lock_guard lock(ended_mutex);
  const auto it = ended_threads().find(tid);
  if (it == ended_threads().end())
    return std::nullopt;
  return it->second;
}

// Prints what the kernel knows of a thread (its name, state and age, where it waits, its kernel
// stack) and whether, and how long ago, it finished its function. True when it is on its way out
// (see describe_threads_not_in), judged from what was printed.
bool describe_thread(pid_t tid) {
  const kernel_view view = kernel_view_of(tid);
  const auto returned = function_returned(tid);
  std::fprintf(stderr, "thread %d (\"%s\"): state %c, started %.3f s ago, waits in \"%s\", "
                       "system call \"%s\"\n",
               tid, read_proc(tid, "comm").c_str(), view.state, seconds_since_boot() - view.started,
               read_proc(tid, "wchan").c_str(), read_proc(tid, "syscall").c_str());
  if (returned)
    std::fprintf(stderr, "  its function returned %.3f s ago\n",
                 std::chrono::duration<double>(clock_type::now() - *returned).count());
  else
    std::fprintf(stderr, "  its function has not returned (or it never ran the harness's code)\n");
  std::fprintf(stderr, "  kernel stack:\n%s\n", read_proc(tid, "stack").c_str());
  return returned || view.state == 'R';
}

// Describes each thread not in `before` (with its stack); true when each of them is on its way
// out: its function has returned (it is inside the C library's or the sanitizer's teardown), or
// it is runnable and only waits for a core. On a virtual machine a virtual CPU can be taken away
// by the host for seconds, with the thread on it, mid-exit: such a thread is slow, not leaked.
bool describe_threads_not_in(const std::vector<pid_t>& before) {
  bool all_ending = true;
  for (const pid_t tid : thread_ids())
    if (!std::binary_search(before.begin(), before.end(), tid)) {
      std::fprintf(stderr, "thread %d was not there at the start\n", tid);
      const bool ending = describe_thread(tid);
      print_stack_of(tid);
      all_ending = all_ending && ending;
    }
  return all_ending;
}

// A hang watchdog: a generous bound that turns a deadlock into a named failure.
std::atomic<clock_type::rep> input_deadline{clock_type::time_point::max().time_since_epoch().count()};

// The watchdog's bound on an input's own steps: 60 s, or FUZZ_INPUT_SECONDS. scripts/fuzz.sh
// sets 1 s for a planted thread, to check that the waits after an input have a bound of their
// own and so fail by the thread count, not as a hang.
std::chrono::seconds input_limit() {
  static const std::chrono::seconds limit = [] {
    const char* given = std::getenv("FUZZ_INPUT_SECONDS");
    const long seconds = given ? std::atol(given) : 0;
    return std::chrono::seconds(seconds > 0 ? seconds : 60);
  }();
  return limit;
}

// FUZZ_PLANT_THREAD=sleep, spin or spin-long: after each input, leave a thread that nothing
// joins, to check the judgement of describe_threads_not_in (scripts/fuzz.sh does, on every run).
// `sleep` is asleep 5 s after the input, its function not returned, and must fail the input;
// `spin` is runnable then and ends a second later, and must pass it, with its report;
// `spin-long` is runnable then too but still there 25 s after the input, and must fail it.
void plant_leftover_thread() {
  static const char* const plant = std::getenv("FUZZ_PLANT_THREAD");
  if (!plant)
    return;
  const auto spin_for = [](clock_type::duration length) {
    std::thread([length] {
      const auto until = clock_type::now() + length;
      while (clock_type::now() < until) {
      }
    }).detach();
  };
  if (std::string(plant) == "sleep")
    std::thread([] { std::this_thread::sleep_for(5500ms); }).detach();
  else if (std::string(plant) == "spin")
    spin_for(6s);
  else if (std::string(plant) == "spin-long")
    spin_for(30s);
}

enum class outcome { value, thrown, aborted, pool_stopped, queue_full, deadline_expired, timeout,
                     other };

struct fuzz_failure {}; // what a call "throws"

constexpr int max_gates = 4;
std::array<std::atomic<bool>, max_gates> gates;
std::atomic<bool> all_open{false};

// One operation's history, shared by the harness, its callable and its completion.
struct record {
  int id = 0;
  int loop = -1;             // the event loop its completion runs on (-1: none)
  int lane = -1;             // the lane it was submitted through
  int origin = -1;           // lane order is checked per submitter: 0 the fuzzing thread, 1+ loops
  std::uint64_t lane_seq = 0;
  bool may_reject = false;   // full_policy::reject applies
  bool has_deadline = false; // with_deadline or with_timeout
  bool has_timeout = false;  // with_timeout
  bool abandons = false;     // through a wrapper with running_cancel::abandon
  // Completed as timed out before its callable began: legitimate only for an abandoned call
  // that a worker had taken, which then runs after its completion (checked by finish()).
  std::atomic<bool> timed_out_before_start{false};
  std::atomic<bool> submitted{false}, stopped_before{false}, started{false}, returned{false};
  std::atomic<int> completions{0}, drops{0};
  std::shared_ptr<asio::cancellation_signal> cancel;
};
using record_ptr = std::shared_ptr<record>;

struct lane_probe {
  std::atomic<std::thread::id> owner{};
  std::array<std::atomic<std::uint64_t>, 8> last_started{}; // per origin
};

struct pool_probe {
  std::size_t max_threads = 0;
  std::atomic<std::size_t> running{0};
};

// FUZZ_TRACE=1 in the environment prints each step (to read a failing input).
const bool trace = std::getenv("FUZZ_TRACE") != nullptr;
#define FUZZ_TRACE_STEP(...)                                                                       \
  do {                                                                                             \
    if (trace)                                                                                     \
      std::fprintf(stderr, __VA_ARGS__);                                                           \
  } while (0)

thread_local int nesting = 0; // calls of ours running on this thread, one inside another

outcome classify(const std::exception_ptr& e) {
  if (!e)
    return outcome::value;
  try {
    std::rethrow_exception(e);
  } catch (const fuzz_failure&) {
    return outcome::thrown;
  } catch (const sa::system_error& se) {
    if (se.code() == asio::error::operation_aborted)
      return outcome::aborted;
    if (se.code() == sa::error::pool_stopped)
      return outcome::pool_stopped;
    if (se.code() == sa::error::queue_full)
      return outcome::queue_full;
    if (se.code() == sa::error::deadline_expired)
      return outcome::deadline_expired;
    if (se.code() == sa::error::timeout)
      return outcome::timeout;
    std::fprintf(stderr, "unexpected error: %s\n", se.what());
    return outcome::other;
  } catch (...) {
    return outcome::other;
  }
}

// Checks one completion against the call's history.
void judge(record& r, outcome o, int value) {
  FUZZ_CHECK(r.completions.fetch_add(1) == 0, "an operation completes exactly once", r.id);
  FUZZ_CHECK(r.drops.load() == 0, "an operation completes exactly once (completed after drop)", r.id);
  switch (o) {
  case outcome::value:
    FUZZ_CHECK(r.returned.load(), "a value comes from a call that returned", r.id);
    FUZZ_CHECK(value == r.id, "a call's value is its own", r.id);
    FUZZ_CHECK(!r.stopped_before.load(), "never a value after pool_stopped", r.id);
    break;
  case outcome::thrown:
    FUZZ_CHECK(r.returned.load(), "an exception comes from a call that ran", r.id);
    break;
  case outcome::pool_stopped:
    FUZZ_CHECK(!r.started.load(), "pool_stopped only for a call that never started", r.id);
    break;
  case outcome::queue_full:
    FUZZ_CHECK(!r.started.load(), "queue_full only for a call that never started", r.id);
    FUZZ_CHECK(r.may_reject, "queue_full only where full_policy::reject applies", r.id);
    break;
  case outcome::deadline_expired:
    FUZZ_CHECK(!r.started.load(), "never deadline_expired for a call that started", r.id);
    FUZZ_CHECK(r.has_deadline, "deadline_expired only for a call with a deadline", r.id);
    break;
  case outcome::timeout:
    FUZZ_CHECK(r.has_timeout, "timeout only under with_timeout", r.id);
    if (r.abandons && !r.started.load())
      r.timed_out_before_start = true; // it must still start: see finish()
    else
      FUZZ_CHECK(r.started.load(), "timeout only for a call that started", r.id);
    break;
  case outcome::aborted:
    break;
  case outcome::other:
    violated("an outcome the library documents", r.id);
  }
  if (r.stopped_before.load())
    FUZZ_CHECK(o != outcome::value && o != outcome::thrown && !r.started.load(),
               "a call submitted to a stopped pool never runs", r.id);
}

// A completion handler that reports whether it was invoked or destroyed unrun.
struct probe_handler {
  record_ptr rec;
  explicit probe_handler(record_ptr r) : rec(std::move(r)) {}
  probe_handler(probe_handler&&) noexcept = default;
  probe_handler& operator=(probe_handler&&) = delete;
  probe_handler(const probe_handler&) = delete;
  ~probe_handler() {
    if (rec)
      rec->drops.fetch_add(1);
  }
  void operator()(std::exception_ptr e, int v) {
    auto r = std::move(rec);
    judge(*r, classify(e), v);
  }
};

struct lane_holder;
struct pool_holder;

// What a call does once it has run its gate: nothing, or one nested operation.
struct nested_step {
  enum kind { none, offload_pool, run_lane, block_on_pool, shutdown_own } what = none;
  std::shared_ptr<sa::blocking_pool> pool; // offload_pool, block_on_pool
  std::shared_ptr<lane_holder> lane;       // run_lane
  sa::shutdown_mode mode = sa::shutdown_mode::drain;
  record_ptr child;
  std::shared_ptr<pool_probe> child_pool_probe;
  std::shared_ptr<lane_probe> child_lane_probe;
};

struct work_fn;
void run_nested(const nested_step& step);

// The blocking call: waits for its gate (at most about 1 ms), may nest, returns or throws.
struct work_fn {
  record_ptr rec;
  std::shared_ptr<pool_probe> pool;
  std::shared_ptr<lane_probe> lane;
  int gate = -1;
  bool stop_aware = true;
  bool throws = false;
  std::shared_ptr<const nested_step> nested;

  int operator()(std::stop_token stop) const {
    record& r = *rec;
    FUZZ_CHECK(!r.started.exchange(true), "a call runs at most once", r.id);
    const bool outer = nesting++ == 0;
    if (pool && outer) {
      const std::size_t now = pool->running.fetch_add(1) + 1;
      FUZZ_CHECK(now <= pool->max_threads, "a pool runs at most max_threads calls", r.id);
    }
    bool took_lane = false;
    if (lane) {
      const auto me = std::this_thread::get_id();
      auto owner = lane->owner.load();
      if (owner != me) {
        std::thread::id none{};
        FUZZ_CHECK(lane->owner.compare_exchange_strong(none, me), "a lane runs one call at a time",
                   r.id);
        took_lane = true;
      }
      if (r.origin >= 0) {
        auto& last = lane->last_started[static_cast<std::size_t>(r.origin)];
        FUZZ_CHECK(last.load() < r.lane_seq, "a lane runs each submitter's calls in order", r.id);
        last.store(r.lane_seq);
      }
    }
    const auto until = clock_type::now() + 1ms;
    while (gate >= 0 && !gates[static_cast<std::size_t>(gate)].load() && !all_open.load() &&
           clock_type::now() < until && !(stop_aware && stop.stop_requested()))
      std::this_thread::sleep_for(50us);
    if (nested)
      run_nested(*nested);
    if (took_lane)
      lane->owner.store(std::thread::id{});
    if (pool && outer)
      pool->running.fetch_sub(1);
    --nesting;
    r.returned = true;
    if (throws)
      throw fuzz_failure{};
    return r.id;
  }
};

struct lane_holder {
  std::shared_ptr<sa::blocking_pool> pool; // outlives the lane (declared first)
  std::optional<sa::serial_lane> lane;
  std::optional<sa::keyed_lanes<int>> keyed;
  int key = 0;
  bool rejects = false;
  std::shared_ptr<lane_probe> probe = std::make_shared<lane_probe>();
  std::shared_ptr<pool_probe> probe_of_pool;
  int pool_slot = -1;
  std::array<std::uint64_t, 8> next_seq{}; // per origin; each origin is one thread
  sa::serial_lane& get() { return keyed ? (*keyed)[key] : *lane; }
};

void run_nested(const nested_step& step) {
  record& c = *step.child;
  switch (step.what) {
  case nested_step::none:
    return;
  case nested_step::offload_pool: {
    work_fn w{step.child, step.child_pool_probe, nullptr, -1, true, false, nullptr};
    // From a worker of the same pool the call runs inline, as part of the call making it, also
    // while a shutdown(drain) finishes that call.
    c.stopped_before = sa::this_thread::current_pool() != step.pool.get() && step.pool->stopped();
    c.submitted = true;
    sa::async_offload(*step.pool, w, probe_handler(step.child));
    return;
  }
  case nested_step::run_lane: {
    work_fn w{step.child, step.child_pool_probe, step.child_lane_probe, -1, true, false, nullptr};
    c.submitted = true;
    outcome o = outcome::value;
    int v = 0;
    try {
      v = step.lane->get().run([&] { return w(std::stop_token{}); });
    } catch (...) {
      o = classify(std::current_exception());
    }
    judge(c, o, v);
    return;
  }
  case nested_step::block_on_pool: {
    work_fn w{step.child, step.child_pool_probe, nullptr, -1, true, false, nullptr};
    c.stopped_before = step.pool->stopped();
    c.submitted = true;
    outcome o = outcome::value;
    int v = 0;
    try {
      v = sa::block_on(sa::async_offload(*step.pool, w, asio::use_awaitable));
    } catch (...) {
      o = classify(std::current_exception());
    }
    judge(c, o, v);
    return;
  }
  case nested_step::shutdown_own:
    // Through an owner: shutdown(cancel) destroys the queued calls, and with them what they
    // own, which may be the last other owner of this pool.
    if (step.pool && sa::this_thread::current_pool() == step.pool.get())
      step.pool->shutdown(step.mode);
    return;
  }
}

struct loop_holder {
  asio::io_context ctx;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard{ctx.get_executor()};
  std::thread thread{[this] {
    pthread_setname_np(pthread_self(), "fuzz-loop"); // the library names its own threads
    witness_end_of_this_thread();
    ctx.run();
  }};
  ~loop_holder() {
    guard.reset();
    thread.join();
  }
};

// Marks a call whose submission (a posted lambda, a coroutine) was destroyed before it ran.
struct frame_guard {
  record_ptr rec;
  bool done = false;
  explicit frame_guard(record_ptr r) : rec(std::move(r)) {}
  frame_guard(frame_guard&& o) noexcept : rec(std::move(o.rec)), done(o.done) {}
  frame_guard& operator=(frame_guard&&) = delete;
  ~frame_guard() {
    if (rec && !done && rec->submitted.load() && rec->completions.load() == 0)
      rec->drops.fetch_add(1);
  }
};

struct pool_entry {
  std::shared_ptr<sa::blocking_pool> pool;
  std::shared_ptr<pool_probe> probe;
  std::weak_ptr<sa::blocking_pool> weak;
  bool rejects = false;
};

using wrapper_fn = sa::any_smart_async_function<int(std::stop_token, const work_fn&)>;

struct wrapper_entry {
  std::optional<wrapper_fn> fn;
  std::shared_ptr<pool_probe> probe;
  bool rejects = false;
  bool abandons = false; // made with running_cancel::abandon
  int pool_slot = -1;
  std::weak_ptr<sa::blocking_pool> pool;
};

// Checks the counters of a pool that has been shut down (and so settled everything). A
// submission racing the shutdown from another thread (a loop, another pool's worker) is counted
// submitted, then refused a moment later: a snapshot in between is short by one. So the sums
// must meet within a bound, not at one instant; a lost count never does.
void check_settled(const sa::blocking_pool& pool) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  sa::pool_stats s = pool.stats();
  auto settled = [&] {
    return s.submitted == s.completed + s.failed + s.cancelled + s.rejected + s.expired +
                              s.timed_out &&
           s.queued == 0 && s.parked == 0 && s.running == 0 && s.blocked_submitters == 0;
  };
  while (!settled() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
    s = pool.stats();
  }
  if (s.submitted != s.completed + s.failed + s.cancelled + s.rejected + s.expired + s.timed_out)
    std::fprintf(stderr,
                 "state_machine: submitted %llu, completed %llu, failed %llu, cancelled %llu, "
                 "rejected %llu, expired %llu, timed_out %llu\n",
                 (unsigned long long)s.submitted, (unsigned long long)s.completed,
                 (unsigned long long)s.failed, (unsigned long long)s.cancelled,
                 (unsigned long long)s.rejected, (unsigned long long)s.expired,
                 (unsigned long long)s.timed_out);
  FUZZ_CHECK(s.submitted == s.completed + s.failed + s.cancelled + s.rejected + s.expired +
                                s.timed_out,
             "submitted == completed + failed + cancelled + rejected + expired + timed_out", -1);
  FUZZ_CHECK(s.queued == 0 && s.parked == 0 && s.running == 0 && s.blocked_submitters == 0,
             "a shut-down pool holds nothing", -1);
}

// Pools whose deleter has not returned yet, and the threads running those deleters. A pool's
// last owner may go on any thread (a loop, the system executor, another pool's worker), and its
// deleter (shutdown, the check above, the destructor that joins its threads) runs there: an
// input is over only once every deleter has returned, not once every pool has lost its owners.
std::atomic<int> pools_alive{0};
std::mutex deleters_mutex;
std::vector<pid_t> deleter_threads;

std::shared_ptr<sa::blocking_pool> make_pool(const sa::pool_options& o) {
  auto pool = std::shared_ptr<sa::blocking_pool>(new sa::blocking_pool(o), [](sa::blocking_pool* p) {
    {
      std::lock_guard lock(deleters_mutex);
      deleter_threads.push_back(gettid());
    }
    if (sa::this_thread::current_pool() != p) {
      p->shutdown(sa::shutdown_mode::cancel);
      check_settled(*p);
    }
    delete p;
    {
      std::lock_guard lock(deleters_mutex);
      deleter_threads.erase(std::find(deleter_threads.begin(), deleter_threads.end(), gettid()));
    }
    pools_alive.fetch_sub(1);
  });
  pools_alive.fetch_add(1);
  return pool;
}

class machine {
public:
  explicit machine(FuzzedDataProvider& in) : in_(in) {}

  void run() {
    for (int step = 0; step < 64 && in_.remaining_bytes() > 0; ++step) {
      one_step();
      check_queue_bounds();
    }
    finish();
  }

private:
  FuzzedDataProvider& in_;

  // The submission target of a step: a pool, a lane or a wrapper, with what it needs.
  struct target {
    int pool_slot = -1;
    sa::blocking_pool* pool = nullptr;
    std::shared_ptr<sa::blocking_pool> pool_owner;
    std::shared_ptr<lane_holder> lane;
    std::optional<wrapper_fn> wrapper; // a copy: calls may outlive the harness's wrapper
    std::shared_ptr<pool_probe> probe;
    bool rejects = false;
    bool abandons = false;
    int lane_slot = -1;
  };

  std::array<pool_entry, 3> pools_{};
  std::array<std::shared_ptr<lane_holder>, 3> lanes_{};
  std::array<wrapper_entry, 2> wrappers_{};
  std::array<std::unique_ptr<loop_holder>, 2> loops_{};
  std::vector<bool> loop_destroyed_;          // per loop ever made
  std::array<int, 2> loop_index_{-1, -1};     // slot -> loop ever made
  std::vector<record_ptr> records_;
  std::vector<std::weak_ptr<sa::blocking_pool>> all_pools_;

  template <typename T>
  T pick(T n) {
    return in_.ConsumeIntegralInRange<T>(0, n - 1);
  }

  record_ptr new_record() {
    auto r = std::make_shared<record>();
    r->id = static_cast<int>(records_.size()) + 1;
    records_.push_back(r);
    return r;
  }

  int live_loop() { // a live loop's slot, or -1
    const int s = pick(2);
    return loops_[static_cast<std::size_t>(s)] ? s : -1;
  }

  void check_queue_bounds() {
    for (auto& p : pools_)
      if (p.pool) {
        const auto s = p.pool->stats();
        FUZZ_CHECK(s.queued <= s.queue_capacity, "a pool queues at most queue_capacity calls", -1);
      }
  }

  // `inline_here`: the call runs on this thread (a sync form), not on a worker of the pool.
  work_fn make_work(const record_ptr& r, const target& t, bool inline_here = false) {
    work_fn w{r, inline_here ? nullptr : t.probe, t.lane ? t.lane->probe : nullptr, -1, true, false,
              nullptr};
    const int g = pick(max_gates + 1) - 1;
    w.gate = g;
    w.stop_aware = in_.ConsumeBool();
    w.throws = pick(8) == 0;
    if (pick(4) == 0)
      w.nested = make_nested(t);
    return w;
  }

  // A nested step only reaches pools of a lower slot (or its own) and lanes of a lower slot, so
  // that no two calls can wait for each other in a cycle (a user's deadlock, not the library's).
  std::shared_ptr<const nested_step> make_nested(const target& parent) {
    // (In a wrapper's call the nested step may hold the last owner of the pool running it: the
    // wrapper destroys its copy of the argument inside the call, and so the pool with it.)
    auto n = std::make_shared<nested_step>();
    const int kind = pick(4);
    FUZZ_TRACE_STEP("  nested step of kind %d (0 offload, 1 lane, 2 block_on, 3 shutdown own)\n", kind);
    const std::size_t slot = pick<std::size_t>(3);
    if (kind == 0 || kind == 2) {
      if (!pools_[slot].pool || static_cast<int>(slot) > parent.pool_slot)
        return nullptr;
      n->what = kind == 0 ? nested_step::offload_pool : nested_step::block_on_pool;
      n->pool = pools_[slot].pool;
      n->child_pool_probe = pools_[slot].probe;
      n->child = new_record();
      n->child->may_reject = pools_[slot].rejects;
    } else if (kind == 1) {
      if (!lanes_[slot] || lane_pool_slot(*lanes_[slot]) > parent.pool_slot ||
          (parent.lane_slot >= 0 && static_cast<int>(slot) >= parent.lane_slot))
        return nullptr;
      n->what = nested_step::run_lane;
      n->lane = lanes_[slot];
      n->child_lane_probe = lanes_[slot]->probe;
      n->child = new_record();
      n->child->may_reject = lanes_[slot]->rejects;
      n->child->lane = static_cast<int>(slot);
    } else {
      n->what = nested_step::shutdown_own;
      n->pool = parent.pool_owner;
      n->mode = in_.ConsumeBool() ? sa::shutdown_mode::drain : sa::shutdown_mode::cancel;
      n->child = new_record();
      n->child->submitted = false; // nothing to complete
    }
    return n;
  }

  static int lane_pool_slot(const lane_holder& l) { return l.pool_slot; }
  // A wrapper may outlive its pool; its calls then complete with pool_stopped.
  static bool is_stopped(const target& t) { return !t.pool || t.pool->stopped(); }

  std::optional<target> choose_target() {
    const int kind = pick(3);
    const std::size_t slot = pick<std::size_t>(3);
    target t;
    if (kind == 0) {
      if (!pools_[slot].pool)
        return std::nullopt;
      t.pool_owner = pools_[slot].pool;
      t.pool = t.pool_owner.get();
      t.pool_slot = static_cast<int>(slot);
      t.probe = pools_[slot].probe;
      t.rejects = pools_[slot].rejects;
    } else if (kind == 1) {
      if (!lanes_[slot])
        return std::nullopt;
      t.lane = lanes_[slot];
      t.pool_owner = t.lane->pool;
      t.pool = t.pool_owner.get();
      t.pool_slot = lane_pool_slot(*t.lane);
      t.probe = t.lane->probe_of_pool;
      t.rejects = t.lane->rejects;
      t.lane_slot = static_cast<int>(slot);
    } else {
      auto& w = wrappers_[slot % 2];
      if (!w.fn)
        return std::nullopt;
      t.pool_owner = w.pool.lock();
      if (!t.pool_owner) // the pool is gone (or going): calling its wrapper is the caller's error
        return std::nullopt;
      t.wrapper = *w.fn;
      t.pool = t.pool_owner.get();
      t.pool_slot = w.pool_slot;
      t.probe = w.probe;
      t.rejects = w.rejects;
      t.abandons = w.abandons;
    }
    return t;
  }

  void prepare(record& r, const target& t, int origin) {
    FUZZ_TRACE_STEP("  call %d: pool %p (slot %d)%s%s, origin %d\n", r.id, static_cast<void*>(t.pool),
                    t.pool_slot, t.lane ? ", through a lane" : "", t.wrapper ? ", through a wrapper" : "",
                    origin);
    r.may_reject = t.rejects;
    r.abandons = t.abandons;
    if (t.lane) {
      r.lane = t.lane_slot;
      r.origin = origin;
      // Sequence numbers per origin; the loop's are taken on the loop (see submit_on_loop).
      if (origin == 0)
        r.lane_seq = ++t.lane->next_seq[0];
    }
  }

  // Starts the operation of `t` for `w`, completing through `token`.
  template <typename Token>
  static void start(const target& t, const work_fn& w, Token&& token) {
    if (t.lane)
      sa::async_offload(t.lane->get(), w, std::forward<Token>(token));
    else if (t.wrapper)
      t.wrapper->async_call(w, sa::as_token(std::forward<Token>(token)));
    else
      sa::async_offload(*t.pool, w, std::forward<Token>(token));
  }

  void one_step() {
    const int op = pick(16);
    if (trace)
      std::fprintf(stderr, "step %d\n", op);
    switch (op) {
    case 0: create_pool(); break;
    case 1: destroy_pool(); break;
    case 2: shutdown_pool(); break;
    case 3: create_lane(); break;
    case 4: lanes_[pick<std::size_t>(3)].reset(); break;
    case 5: create_wrapper(); break;
    case 6: wrappers_[pick<std::size_t>(2)].fn.reset(); break;
    case 7: create_loop(); break;
    case 8: destroy_loop(); break;
    case 9: submit_from_here(); break;
    case 10: submit_on_loop(); break;
    case 11: coroutine_on_loop(); break;
    case 12: cancel(); break;
    case 13: gates[pick<std::size_t>(max_gates)] = true; break;
    case 14: sync_call(); break;
    case 15: stream(); break;
    }
  }

  void create_pool() {
    auto& e = pools_[pick<std::size_t>(3)];
    if (e.pool)
      return;
    sa::pool_options o;
    o.threads = 1 + pick<std::size_t>(2);
    o.queue_capacity = 1 + pick<std::size_t>(3);
    o.when_full = in_.ConsumeBool() ? sa::full_policy::reject : sa::full_policy::wait;
    o.max_threads = in_.ConsumeBool() ? o.threads + 1 + pick<std::size_t>(2) : 0;
    o.grow_after = std::chrono::microseconds(pick(3) * 100);
    o.keep_alive = std::chrono::milliseconds(pick(3));
    o.spin_before_park = in_.ConsumeBool() ? 0us : 25us;
    o.on_thread_start = [] { witness_end_of_this_thread(); };
    e.pool = make_pool(o);
    e.weak = e.pool;
    e.rejects = o.when_full == sa::full_policy::reject;
    e.probe = std::make_shared<pool_probe>();
    e.probe->max_threads = std::max(o.threads, o.max_threads);
    all_pools_.push_back(e.pool);
    FUZZ_TRACE_STEP("  pool %p in slot %td: %zu threads (max %zu), queue %zu, %s\n",
                    static_cast<void*>(e.pool.get()), &e - pools_.data(), o.threads, o.max_threads,
                    o.queue_capacity, e.rejects ? "reject" : "wait");
  }

  void destroy_pool() {
    const std::size_t slot = pick<std::size_t>(3);
    auto& e = pools_[slot];
    if (!e.pool)
      return;
    FUZZ_TRACE_STEP("  destroy pool %p (slot %zu, %ld owners)\n", static_cast<void*>(e.pool.get()),
                    slot, e.pool.use_count());
    // The pool must outlive its lanes: they go first.
    for (auto& l : lanes_)
      if (l && l->pool == e.pool)
        l.reset();
    e.pool.reset(); // destroyed here, or by the last call still holding it
  }

  void shutdown_pool() {
    auto& e = pools_[pick<std::size_t>(3)];
    if (e.pool) {
      e.pool->shutdown(in_.ConsumeBool() ? sa::shutdown_mode::drain : sa::shutdown_mode::cancel);
      check_settled(*e.pool);
    }
  }

  void create_lane() {
    auto& l = lanes_[pick<std::size_t>(3)];
    const std::size_t ps = pick<std::size_t>(3);
    auto& p = pools_[ps];
    if (l || !p.pool)
      return;
    l = std::make_shared<lane_holder>();
    l->pool = p.pool;
    l->pool_slot = static_cast<int>(ps);
    l->probe_of_pool = p.probe;
    sa::lane_options o;
    o.queue_capacity = 1 + pick<std::size_t>(2);
    o.when_full = in_.ConsumeBool() ? sa::full_policy::reject : sa::full_policy::wait;
    l->rejects = o.when_full == sa::full_policy::reject;
    if (in_.ConsumeBool())
      l->lane.emplace(*p.pool, o);
    else {
      l->keyed.emplace(*p.pool, o);
      l->key = pick(2);
    }
  }

  void create_wrapper() {
    auto& w = wrappers_[pick<std::size_t>(2)];
    const std::size_t ps = pick<std::size_t>(3);
    auto& p = pools_[ps];
    if (w.fn || !p.pool)
      return;
    w.pool_slot = static_cast<int>(ps);
    w.pool = p.pool;
    sa::smart_options o;
    o.name = "fuzzed call";
    o.on_loop = sa::loop_call_policy::report;
    // abandon completes a cancelled running call at once; our callables own what they touch.
    o.on_cancel = in_.ConsumeBool() ? sa::running_cancel::abandon : sa::running_cancel::wait_for_return;
    w.abandons = o.on_cancel == sa::running_cancel::abandon;
    w.fn.emplace(sa::smart_async(
        *p.pool, std::function<int(std::stop_token, const work_fn&)>([](std::stop_token st, const work_fn& f) {
          return f(std::move(st));
        }),
        o));
    w.probe = p.probe;
    w.rejects = p.rejects;
  }

  void create_loop() {
    const std::size_t s = pick<std::size_t>(2);
    if (loops_[s])
      return;
    loops_[s] = std::make_unique<loop_holder>();
    FUZZ_TRACE_STEP("  loop %zu made (loop #%zu)\n", s, loop_destroyed_.size());
    loop_index_[s] = static_cast<int>(loop_destroyed_.size());
    loop_destroyed_.push_back(false);
  }

  void destroy_loop() {
    const std::size_t s = pick<std::size_t>(2);
    if (!loops_[s])
      return;
    FUZZ_TRACE_STEP("  destroy loop %zu (loop #%d)\n", s, loop_index_[s]);
    loops_[s]->ctx.stop();
    loop_destroyed_[static_cast<std::size_t>(loop_index_[s])] = true;
    loops_[s].reset();
  }

  // From this (plain) thread: a callback without an executor, one bound to a loop, a deadline.
  void submit_from_here() {
    auto t = choose_target();
    if (!t)
      return;
    auto r = new_record();
    prepare(*r, *t, 0);
    const work_fn w = make_work(r, *t);
    const int loop = in_.ConsumeBool() ? live_loop() : -1;
    const bool deadline = pick(3) == 0;
    const auto budget = std::chrono::microseconds(pick(4) * 300);
    r->has_deadline = deadline;
    r->stopped_before = is_stopped(*t);
    r->submitted = true;
    if (loop >= 0) {
      r->loop = loop_index_[static_cast<std::size_t>(loop)];
      auto h = asio::bind_executor(loops_[static_cast<std::size_t>(loop)]->ctx, probe_handler(r));
      if (deadline)
        start(*t, w, sa::with_deadline(budget, std::move(h)));
      else
        start(*t, w, std::move(h));
    } else if (deadline) {
      start(*t, w, sa::with_deadline(budget, probe_handler(r)));
    } else {
      start(*t, w, probe_handler(r));
    }
  }

  // From an event loop, cancellable from that loop.
  void submit_on_loop() {
    const int loop = live_loop();
    auto t = choose_target();
    if (loop < 0 || !t)
      return;
    auto r = new_record();
    prepare(*r, *t, 1 + loop);
    r->loop = loop_index_[static_cast<std::size_t>(loop)];
    r->cancel = std::make_shared<asio::cancellation_signal>();
    const work_fn w = make_work(r, *t);
    const bool deadline = pick(3) == 0;
    const auto budget = std::chrono::microseconds(pick(4) * 300);
    r->has_deadline = deadline;
    auto& ctx = loops_[static_cast<std::size_t>(loop)]->ctx;
    asio::post(ctx, [t = *t, w, r, deadline, budget, ex = ctx.get_executor(),
                     g = frame_guard(r)]() mutable {
      g.done = true;
      if (t.lane && r->origin >= 0)
        r->lane_seq = ++t.lane->next_seq[static_cast<std::size_t>(r->origin)];
      r->stopped_before = is_stopped(t);
      r->submitted = true;
      auto h = asio::bind_cancellation_slot(r->cancel->slot(),
                                            asio::bind_executor(ex, probe_handler(r)));
      if (deadline)
        start(t, w, sa::with_deadline(budget, std::move(h)));
      else
        start(t, w, std::move(h));
      t = target{}; // the pool and lane may go while the call is in flight
    });
  }

  // (A member function, not a lambda: clang 14 rejects a coroutine lambda here.)
  static asio::awaitable<void> await_call(target t, work_fn w, record_ptr r, bool timed,
                                          std::chrono::microseconds timeout) {
    frame_guard g(r);
    if (t.lane && r->origin >= 0)
      r->lane_seq = ++t.lane->next_seq[static_cast<std::size_t>(r->origin)];
    r->stopped_before = is_stopped(t);
    r->submitted = true;
    outcome o = outcome::value;
    int v = 0;
    try {
      if (timed) {
        if (t.lane)
          v = co_await sa::with_timeout(sa::async_offload(t.lane->get(), w, sa::deferred), timeout);
        else if (t.wrapper)
          v = co_await sa::with_timeout(t.wrapper->async_call(w, sa::deferred), timeout);
        else
          v = co_await sa::with_timeout(sa::async_offload(*t.pool, w, sa::deferred), timeout);
      } else {
        if (t.lane)
          v = co_await sa::async_offload(t.lane->get(), w);
        else if (t.wrapper)
          v = co_await t.wrapper->async_call(w);
        else
          v = co_await sa::async_offload(*t.pool, w);
      }
    } catch (...) {
      o = classify(std::current_exception());
    }
    g.done = true;
    judge(*r, o, v);
  }

  // A coroutine on a loop awaiting the call under with_timeout (or plainly).
  void coroutine_on_loop() {
    const int loop = live_loop();
    auto t = choose_target();
    if (loop < 0 || !t)
      return;
    auto r = new_record();
    const bool timed = in_.ConsumeBool();
    // with_timeout starts the call from a child coroutine, after other handlers may have run:
    // its place in the lane's order is not the coroutine's.
    prepare(*r, *t, timed ? -1 : 1 + loop);
    r->loop = loop_index_[static_cast<std::size_t>(loop)];
    const work_fn w = make_work(r, *t);
    const auto timeout = std::chrono::microseconds(pick(4) * 400);
    r->has_deadline = r->has_timeout = timed;
    auto& ctx = loops_[static_cast<std::size_t>(loop)]->ctx;
    asio::co_spawn(
        ctx,
        await_call(*t, w, r, timed, timeout),
        asio::detached);
  }

  void cancel() {
    if (records_.empty())
      return;
    auto& r = records_[pick(records_.size())];
    if (!r->cancel || r->loop < 0)
      return;
    // The signal is emitted on the loop that submitted the call, as Asio requires.
    for (std::size_t s = 0; s < 2; ++s)
      if (loops_[s] && loop_index_[s] == r->loop) {
        const auto type = in_.ConsumeBool() ? asio::cancellation_type::terminal
                                            : asio::cancellation_type::partial;
        asio::post(loops_[s]->ctx, [sig = r->cancel, type] { sig->emit(type); });
      }
  }

  // Synchronous forms on this thread: a wrapper's w(x), lane.run(f), block_on.
  void sync_call() {
    auto t = choose_target();
    if (!t)
      return;
    auto r = new_record();
    prepare(*r, *t, 0);
    const work_fn w = make_work(r, *t, t->wrapper.has_value() || t->lane);
    r->submitted = true;
    outcome o = outcome::value;
    int v = 0;
    try {
      if (t->wrapper) {
        v = (*t->wrapper)(w);
      } else if (t->lane) {
        v = t->lane->get().run([&] { return w(std::stop_token{}); });
      } else {
        r->stopped_before = is_stopped(*t);
        v = sa::block_on(sa::async_offload(*t->pool, w, asio::use_awaitable));
      }
    } catch (...) {
      o = classify(std::current_exception());
    }
    if (t->wrapper && o == outcome::value)
      FUZZ_CHECK(r->returned.load(), "a wrapper's sync form runs its call inline", r->id);
    judge(*r, o, v);
  }

  // A stream with several emitters on several executors, consumed here.
  void stream() {
    const std::size_t capacity = 1 + pick<std::size_t>(3);
    const int emitters = 1 + pick(3);
    const int per = pick(5);
    const int limit = pick(2) == 0 ? pick(6) : -1;
    const int loop = live_loop();
    std::optional<asio::any_io_executor> other;
    if (loop >= 0)
      other = loops_[static_cast<std::size_t>(loop)]->ctx.get_executor();
    std::array<int, 3> last{-1, -1, -1};
    int got = 0;
    {
      sa::sync_stream<int> s(capacity, [=](sa::stream_writer<int> out) -> asio::awaitable<void> {
        for (int k = 1; k < emitters; ++k) {
          auto emit_all = [](sa::stream_writer<int> w, int k, int per) -> asio::awaitable<void> {
            try {
              for (int i = 0; i < per; ++i)
                co_await w.emit(k * 100 + i);
            } catch (const sa::system_error&) {
            }
          };
          if (other && k == 2)
            asio::co_spawn(*other, emit_all(out, k, per), asio::detached);
          else
            asio::co_spawn(co_await asio::this_coro::executor, emit_all(out, k, per), asio::detached);
        }
        for (int i = 0; i < per; ++i)
          co_await out.emit(i);
      });
      for (int v : s) {
        const auto e = static_cast<std::size_t>(v / 100);
        FUZZ_CHECK(e < 3 && last[e] < v % 100, "a stream delivers each emitter's items in order", -1);
        last[e] = v % 100;
        if (++got == limit)
          break;
      }
    }
    if (limit < 0 || limit > emitters * per)
      FUZZ_CHECK(got == emitters * per, "a stream delivers every item emitted", -1);
  }

  void finish() {
    all_open = true;
    for (auto& l : lanes_)
      l.reset();
    for (auto& w : wrappers_)
      w.fn.reset();
    for (auto& p : pools_)
      p.pool.reset();
    // Calls may still hold pools (nested steps); each is destroyed when its last call ends.
    for (auto& weak : all_pools_) {
      const auto since = clock_type::now();
      bool told = false;
      while (!weak.expired()) {
        std::this_thread::sleep_for(100us);
        if (trace && !told && clock_type::now() - since > 5s) {
          told = true;
          const auto pool = weak.lock();
          std::fprintf(stderr, "pool %p still has %ld owners after 5 s\n",
                       static_cast<void*>(pool.get()), pool ? pool.use_count() - 1 : 0L);
        }
      }
    }
    for (auto& l : loops_)
      l.reset(); // runs what it is owed, then joins
    // Their deleters may still be running elsewhere (after the loops: one may run on a loop
    // thread, and wait there for what the loop owes): wait for the last to return.
    const auto since = clock_type::now();
    bool told = false;
    while (pools_alive.load() > 0) {
      std::this_thread::sleep_for(100us);
      if (!told && clock_type::now() - since > 5s) {
        told = true;
        std::fprintf(stderr, "\na pool's deleter still runs 5 s after the loops ended:\n");
        std::lock_guard lock(deleters_mutex);
        for (const pid_t tid : deleter_threads)
          print_stack_of(tid);
      }
    }
    // A completion without an executor may still be on its way through the system executor.
    const auto until = clock_type::now() + 10s;
    for (const auto& r : records_)
      while (r->submitted.load() && r->completions.load() + r->drops.load() == 0 &&
             clock_type::now() < until)
        std::this_thread::sleep_for(100us);
    for (const auto& r : records_) {
      if (!r->submitted.load()) {
        FUZZ_CHECK(r->completions.load() == 0, "a call never submitted never completes", r->id);
        continue;
      }
      const int done = r->completions.load(), drops = r->drops.load();
      if (done == 0 && drops > 0) {
        FUZZ_CHECK(r->loop >= 0 && loop_destroyed_[static_cast<std::size_t>(r->loop)],
                   "a handler is dropped unrun only when its event loop is destroyed", r->id);
        continue;
      }
      if (done != 1)
        std::fprintf(stderr, "operation %d: completions %d, drops %d, started %d, returned %d, "
                             "loop %d, lane %d\n",
                     r->id, done, drops, int(r->started), int(r->returned), r->loop, r->lane);
      FUZZ_CHECK(done == 1, "every operation completes exactly once", r->id);
      // Every pool is gone, so every call a worker took has run.
      FUZZ_CHECK(!r->timed_out_before_start.load() || r->started.load(),
                 "timeout only for a call that started (an abandoned one, by the end)", r->id);
    }
  }
};

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sa::set_diagnostics_handler([](const sa::diagnostic&) {});
  // The shared background loop starts on first use and lives for the process: start it first.
  sa::block_on([]() -> asio::awaitable<int> { co_return 0; }());
  // So does Asio's system executor (its threads run completions whose pool is gone).
  std::promise<void> ran;
  asio::post(asio::system_executor(), [&] { ran.set_value(); });
  ran.get_future().wait();
  std::thread([] {
    for (;;) {
      std::this_thread::sleep_for(1s);
      if (clock_type::now().time_since_epoch().count() > input_deadline.load()) {
        // FUZZ_HANG_GDB=1: every thread's stack first, to see who waits for whom.
        if (std::getenv("FUZZ_HANG_GDB"))
          std::system(("gdb -p " + std::to_string(getpid()) +
                       " -batch -ex 'thread apply all bt 30' >&2 2>/dev/null")
                          .c_str());
        static const std::string hang = "an input finishes within " +
                                        std::to_string(input_limit().count()) +
                                        " s (something hangs)";
        violated(hang.c_str());
      }
    }
  }).detach();
  pthread_setname_np(pthread_self(), "fuzz-main"); // Asio's system executor keeps the program's
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::lock_guard lock(ended_mutex);
    ended_threads().clear();
  }
  const std::vector<pid_t> threads_before = thread_ids();
  const std::size_t threads = threads_before.size();
  std::size_t fds = count_entries("/proc/self/fd");
  input_deadline = (clock_type::now() + input_limit()).time_since_epoch().count();
  for (auto& g : gates)
    g = false;
  all_open = false;
  {
    FuzzedDataProvider in(data, size);
    machine(in).run();
  }
  plant_leftover_thread();
  // The waits below end by themselves (after 5 s, then 20 s more at most): they get a minute
  // of their own, so an input that used most of its minute still fails by its thread count,
  // not as a hang.
  input_deadline = (clock_type::now() + 60s).time_since_epoch().count();
  // A pool destroyed on its own worker detaches that worker, which ends a moment later.
  const auto until = clock_type::now() + 5s;
  while (count_entries("/proc/self/task") > threads && clock_type::now() < until)
    std::this_thread::sleep_for(200us);
  // A thread still there now is described, with its stack. One that never ran again, or is
  // asleep with its function not returned, fails the input; one on its way out (see
  // describe_threads_not_in) gets 20 s more to end. Either way the report says how long it
  // stayed, which tells a thread that is merely slow to end from one that never would.
  bool threads_back = count_entries("/proc/self/task") == threads;
  if (!threads_back) {
    std::fprintf(stderr, "\nthreads: %zu at the start of the input, %zu 5 s after its end\n", threads,
                 count_entries("/proc/self/task"));
    // Printing a stack starts the sanitizer's symbolizer, whose pipes stay open: not the input's.
    const std::size_t fds_before_report = count_entries("/proc/self/fd");
    const bool all_ending = describe_threads_not_in(threads_before);
    fds += count_entries("/proc/self/fd") - fds_before_report;
    const auto since = clock_type::now();
    while (count_entries("/proc/self/task") > threads && clock_type::now() < since + 20s)
      std::this_thread::sleep_for(1ms);
    threads_back = all_ending && count_entries("/proc/self/task") == threads;
    std::fprintf(stderr, "threads: %zu, %.3f s later (%s)\n", count_entries("/proc/self/task"),
                 std::chrono::duration<double>(clock_type::now() - since).count(),
                 threads_back ? "on their way out at 5 s and gone since: the input passes"
                              : "the input fails");
  }
  FUZZ_CHECK(threads_back, "threads return to their starting count", -1);
#if !defined(__SANITIZE_THREAD__) && !(defined(__has_feature) && __has_feature(thread_sanitizer))
  // (Not under TSan, whose runtime opens descriptors of its own as it goes.)
  FUZZ_CHECK(count_entries("/proc/self/fd") == fds, "descriptors return to their starting count", -1);
#else
  (void)fds;
#endif
  input_deadline = clock_type::time_point::max().time_since_epoch().count();
  return 0;
}
