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
// Usage: driver await|callback|future|future-lean CALLS IN_FLIGHT [watch|nowatch]
//   nowatch: pool_options::report_slow_call_after = 0 (the slow-call watch off), where the
//   revision has that option; watch (the default) leaves the revision's default.
//   future-lean: the same round trips through bench/baselines.hpp's lean_offload on an
//   asio::thread_pool of one thread (scripts/bench-syscalls.sh compares the two).
// It is compiled against each revision's headers as they are, so it uses only what every
// revision since 0.1.0 has: async_offload, pool_options::threads and spin_before_park.
// The library first: it sets up Asio's coroutine support (the CMake build passes it instead).
#include <smartasync/smartasync.hpp>

#include "../baselines.hpp"
#include "../drivers.hpp"

#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

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

} // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s await|callback|future|future-lean CALLS IN_FLIGHT [watch|nowatch]\n",
                 argv[0]);
    return 2;
  }
  const std::string_view mode = argv[1];
  const std::size_t calls = std::strtoul(argv[2], nullptr, 10);
  const std::size_t in_flight = std::max<std::size_t>(1, std::strtoul(argv[3], nullptr, 10));
  const bool watch = argc < 5 || std::string_view(argv[4]) != "nowatch";
  smartasync::blocking_pool pool{options(watch)};
  // The same drivers as bench/offload.cpp's tables.
  if (mode == "await")
    bench::drive_awaitable(in_flight, calls, [&](std::size_t, int x) {
      return smartasync::async_offload(pool, [x] { return bench::trivial(x); }, asio::use_awaitable);
    });
  else if (mode == "callback")
    bench::drive_callback(in_flight, calls, [&](int x, auto handler) {
      smartasync::async_offload(pool, [x] { return bench::trivial(x); }, std::move(handler));
    });
  else if (mode == "future")
    bench::drive_future(in_flight, calls, [&](int x) {
      return smartasync::async_offload(pool, [x] { return bench::trivial(x); }, asio::use_future);
    });
  else if (mode == "future-lean") {
    asio::thread_pool lean_pool{1};
    bench::drive_future(in_flight, calls, [&](int x) {
      return bench::lean_offload(lean_pool, [x] { return bench::trivial(x); }, asio::use_future);
    });
  } else {
    std::fprintf(stderr, "unknown mode '%s'\n", argv[1]);
    return 2;
  }
  return 0;
}
