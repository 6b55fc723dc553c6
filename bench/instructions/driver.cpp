// bench/instructions/driver.cpp - a fixed number of offload round trips, for counting the
// instructions each one costs (scripts/bench-instructions.sh runs it under callgrind).
// Distributed under the Boost Software License, Version 1.0.
//
// Wall-clock tables of a sequential round trip measure this machine's wake-ups more than the
// library: a virtual CPU that halted takes tens of microseconds to resume, and whether it did
// changes run to run. The instructions a round trip executes in user space do not depend on
// that, so two revisions compare to within a percent. The pool does not spin
// (spin_before_park = 0): a spin executes as many instructions as the scheduler lets it.
//
// Usage: driver await|callback|future CALLS IN_FLIGHT [watch|nowatch]
//   nowatch: pool_options::report_slow_call_after = 0 (the slow-call watch off), where the
//   revision has that option; watch (the default) leaves the revision's default.
// It is compiled against each revision's headers as they are, so it uses only what every
// revision since 0.1.0 has: async_offload, pool_options::threads and spin_before_park.
#include <smartasync/smartasync.hpp>

#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <future>
#include <string_view>
#include <vector>

namespace {

volatile int sink; // keeps every result alive

int trivial(int x) { return x + 1; }

// Turns the slow-call watch off, in the revisions that have one (a template, so that the
// member is looked up only where it exists).
template <typename Options>
void watch_off(Options& o) {
  if constexpr (requires { o.report_slow_call_after; })
    o.report_slow_call_after = std::chrono::milliseconds{0};
}

smartasync::pool_options options(bool watch) {
  smartasync::pool_options o;
  o.threads = 1;
  o.spin_before_park = std::chrono::microseconds{0};
  if (!watch)
    watch_off(o);
  return o;
}

// `in_flight` coroutines on one io_context, each awaiting its share of the calls in turn.
void awaited(smartasync::blocking_pool& pool, std::size_t calls, std::size_t in_flight) {
  asio::io_context ctx;
  for (std::size_t c = 0; c < in_flight; ++c)
    asio::co_spawn(ctx, [&pool, per = calls / in_flight]() -> asio::awaitable<void> {
      for (std::size_t i = 0; i < per; ++i)
        sink = co_await smartasync::async_offload(pool, [i] { return trivial(int(i)); },
                                                  asio::use_awaitable);
    }, asio::detached);
  ctx.run();
}

// `in_flight` chains of callbacks on one io_context, each starting the next call.
void by_callback(smartasync::blocking_pool& pool, std::size_t calls, std::size_t in_flight) {
  asio::io_context ctx;
  struct chain {
    asio::io_context* ctx;
    smartasync::blocking_pool* pool;
    std::size_t left;
    void next() {
      if (left-- == 0)
        return;
      smartasync::async_offload(*pool, [x = int(left)] { return trivial(x); },
                                asio::bind_executor(*ctx, [this](std::exception_ptr, int r) {
                                  sink = r;
                                  next();
                                }));
    }
  };
  std::vector<chain> chains(in_flight, chain{&ctx, &pool, calls / in_flight});
  for (auto& c : chains)
    asio::post(ctx, [&c] { c.next(); });
  ctx.run();
}

// From a plain thread: `in_flight` futures started, then all waited for, repeated.
void by_future(smartasync::blocking_pool& pool, std::size_t calls, std::size_t in_flight) {
  std::vector<std::future<int>> futures;
  futures.reserve(in_flight);
  for (std::size_t done = 0; done < calls; done += in_flight) {
    for (std::size_t k = 0; k < in_flight; ++k)
      futures.push_back(smartasync::async_offload(pool, [k] { return trivial(int(k)); },
                                                  asio::use_future));
    for (auto& f : futures)
      sink = f.get();
    futures.clear();
  }
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s await|callback|future CALLS IN_FLIGHT [watch|nowatch]\n",
                 argv[0]);
    return 2;
  }
  const std::string_view mode = argv[1];
  const std::size_t calls = std::strtoul(argv[2], nullptr, 10);
  const std::size_t in_flight = std::max<std::size_t>(1, std::strtoul(argv[3], nullptr, 10));
  const bool watch = argc < 5 || std::string_view(argv[4]) != "nowatch";
  smartasync::blocking_pool pool{options(watch)};
  if (mode == "await")
    awaited(pool, calls, in_flight);
  else if (mode == "callback")
    by_callback(pool, calls, in_flight);
  else if (mode == "future")
    by_future(pool, calls, in_flight);
  else {
    std::fprintf(stderr, "unknown mode '%s'\n", argv[1]);
    return 2;
  }
  return 0;
}
