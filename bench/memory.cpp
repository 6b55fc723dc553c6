// bench/memory.cpp - heap bytes per queued operation and peak RSS with 100k queued operations.
// Distributed under the Boost Software License, Version 1.0.
//
// A replaced global operator new counts every allocation of the process. The pool's single
// worker is held by a gate while N operations are submitted from a plain thread with a
// callback bound to an io_context, so every one of them is queued at once; then the gate
// opens and the io_context runs the completions. Each variant runs in a forked child that
// starts with no threads, so ru_maxrss (a process-wide high-water mark) is its own.
#include "baselines.hpp"
#include "drivers.hpp"
#include "harness.hpp"

#include <smartasync/smart_async.hpp>

#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <new>

namespace {
std::atomic<std::size_t> g_allocs{0}, g_bytes{0};
} // namespace

// Out of line: inlined into a caller, gcc 12 pairs the free() below with `new` and warns
// (-Wmismatched-new-delete) although this pair is the replacement itself.
[[gnu::noinline]] void* operator new(std::size_t size) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(size, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1))
    return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return ::operator new(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
  return ::operator new(size, tag);
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using bench::trivial;

struct outcome {
  double allocs_per_queued = 0, bytes_per_queued = 0; // while queued
  double allocs_per_op = 0, bytes_per_op = 0;         // submission to completion
  double rss_delta_mb = 0;                            // peak RSS growth
  std::size_t completed = 0;
};

// Holds the worker, submits n operations with `submit(x, handler)`, then lets them run.
template <typename Hold, typename Submit>
outcome measure(std::size_t n, Hold hold, Submit submit) {
  outcome o;
  asio::io_context ctx;
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  hold([opened] { opened.wait(); });
  std::size_t completed = 0;
  auto on_done = asio::bind_executor(ctx, [&completed](std::exception_ptr, int r) {
    bench::keep(r);
    ++completed;
  });
  const long rss0 = bench::peak_rss_bytes();
  const std::size_t a0 = g_allocs.load(), b0 = g_bytes.load();
  for (std::size_t i = 0; i < n; ++i)
    submit(int(i), on_done);
  const std::size_t a1 = g_allocs.load(), b1 = g_bytes.load();
  const long rss1 = bench::peak_rss_bytes();
  gate.set_value();
  ctx.run();
  const std::size_t a2 = g_allocs.load(), b2 = g_bytes.load();
  o.allocs_per_queued = double(a1 - a0) / double(n);
  o.bytes_per_queued = double(b1 - b0) / double(n);
  o.allocs_per_op = double(a2 - a0) / double(n);
  o.bytes_per_op = double(b2 - b0) / double(n);
  o.rss_delta_mb = double(rss1 - rss0) / (1024.0 * 1024.0);
  o.completed = completed;
  return o;
}

outcome run_variant(int which, std::size_t n) {
  switch (which) {
  case 0: {
    smartasync::blocking_pool pool{smartasync::pool_options{1, n + 16, smartasync::full_policy::wait}};
    auto w = smartasync::smart_async(pool, [](int x) { return trivial(x); });
    auto blocker = smartasync::smart_async(pool, [](std::function<void()> f) { f(); });
    return measure(
        n, [&](auto wait) { blocker.async_call(std::function<void()>(wait), [](std::exception_ptr) {}); },
        [&](int x, auto& handler) { w.async_call(x, handler); });
  }
  case 1: {
    asio::thread_pool tp{1};
    return measure(
        n, [&](auto wait) { asio::post(tp, wait); },
        [&](int x, auto& handler) { bench::lean_offload(tp, [x] { return trivial(x); }, handler); });
  }
  default: {
    asio::thread_pool tp{1};
    return measure(
        n, [&](auto wait) { asio::post(tp, wait); },
        [&](int x, auto& handler) {
          asio::co_spawn(tp, [x]() -> asio::awaitable<int> { co_return trivial(x); }, handler);
        });
  }
  }
}

} // namespace

int main(int argc, char** argv) {
  auto opts = bench::options::parse(argc, argv);
  bench::results out(opts);
  const std::size_t n = opts.quick ? 10000 : 100000;
  const char* names[] = {"smartasync w.async_call(x, callback)", "lean async_initiate+thread_pool",
                         "co_spawn(thread_pool, callback)"};

  fmt::print("# memory per operation, {} operations queued at once behind a held worker\n", n);
  fmt::print("{:<34} {:>14} {:>14} {:>14} {:>14} {:>16}\n", "variant", "allocs/queued",
             "bytes/queued", "allocs/op", "bytes/op", "peak RSS +MiB");
  for (int which = 0; which < 3; ++which) {
    // Fork before any thread exists: the child measures one variant and reports through a pipe.
    int fds[2];
    if (pipe(fds) != 0)
      return 1;
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      const outcome o = run_variant(which, n);
      [[maybe_unused]] auto written = write(fds[1], &o, sizeof o);
      _exit(o.completed == n ? 0 : 3);
    }
    close(fds[1]);
    outcome o;
    const auto got = read(fds[0], &o, sizeof o);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got != sizeof o || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fmt::print(stderr, "variant {} failed\n", names[which]);
      return 1;
    }
    fmt::print("{:<34} {:>14.2f} {:>14.1f} {:>14.2f} {:>14.1f} {:>16.1f}\n", names[which],
               o.allocs_per_queued, o.bytes_per_queued, o.allocs_per_op, o.bytes_per_op,
               o.rss_delta_mb);
    out.add("memory", names[which], "allocs_per_queued_op", o.allocs_per_queued, "allocs");
    out.add("memory", names[which], "bytes_per_queued_op", o.bytes_per_queued, "bytes");
    out.add("memory", names[which], "bytes_per_op", o.bytes_per_op, "bytes");
    out.add("memory", names[which], "peak_rss_delta_mib", o.rss_delta_mb, "MiB");
  }
}
