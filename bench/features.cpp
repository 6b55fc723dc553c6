// bench/features.cpp - what serial lanes, deadlines and context carriers cost per round trip.
// Distributed under the Boost Software License, Version 1.0.
//
// Each table alternates the feature with a plain async_offload to the same pool in one
// process (the harness's Williams rounds) and reports the paired ratio. A trivial function
// makes the round trip from an io_context coroutine to a pool of 2 and back, so the table
// shows the feature's overhead at its most visible; 1 in flight measures latency, 64 in
// flight throughput (each of the 64 coroutines on a lane of its own, as a server with one lane
// per connection would be).
#include <smartasync/context_carrier.hpp>
#include <smartasync/deadline.hpp>
#include <smartasync/offload.hpp>
#include <smartasync/serial_lane.hpp>

#include "harness.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace {

[[gnu::noinline]] int trivial(int x) noexcept {
  bench::keep(x);
  return x + 1;
}

// `inflight` coroutines on one io_context, coroutine k awaiting n / inflight round trips
// through op(k, i) in sequence.
template <typename Op>
void drive(std::size_t inflight, std::size_t n, Op op) {
  asio::io_context ctx;
  const std::size_t per = n / inflight;
  for (std::size_t k = 0; k < inflight; ++k)
    asio::co_spawn(
        ctx,
        [&op, per, k]() -> asio::awaitable<void> {
          for (std::size_t i = 0; i < per; ++i) {
            const int r = co_await op(k, int(i));
            bench::keep(r);
          }
        },
        asio::detached);
  ctx.run();
}

// A request id as a logging library keeps it: a thread_local 64-bit value.
struct trace_id {
  using value_type = std::uint64_t;
  static inline thread_local std::uint64_t current = 0;
  static value_type capture() noexcept { return current; }
  static value_type exchange(value_type v) noexcept { return std::exchange(current, v); }
};

void features_group(std::size_t inflight, const bench::options& opts, bench::results& out) {
  const std::string title = fmt::format("features, {} in flight, pool of 2", inflight);
  if (!opts.wanted(title))
    return;
  smartasync::blocking_pool pool{2};
  std::vector<std::unique_ptr<smartasync::serial_lane>> lanes;
  for (std::size_t k = 0; k < inflight; ++k)
    lanes.push_back(std::make_unique<smartasync::serial_lane>(pool));
  const auto far = std::chrono::hours(1);

  std::vector<bench::contender> cs{
      {"plain async_offload(pool, f)",
       [&](std::size_t n) {
         drive(inflight, n, [&](std::size_t, int x) {
           return smartasync::async_offload(pool, [x] { return trivial(x); });
         });
       },
       0, {}},
      {"async_offload(lane, f)",
       [&](std::size_t n) {
         drive(inflight, n, [&](std::size_t k, int x) {
           return smartasync::async_offload(*lanes[k], [x] { return trivial(x); });
         });
       },
       0, {}},
      {"with_deadline(1h, use_awaitable)",
       [&](std::size_t n) {
         drive(inflight, n, [&](std::size_t, int x) {
           return smartasync::async_offload(pool, [x] { return trivial(x); },
                                            smartasync::with_deadline(far, asio::use_awaitable));
         });
       },
       0, {}},
      {"one context carrier registered",
       [&](std::size_t n) {
         auto carried = smartasync::carry_context<trace_id>();
         trace_id::current = 42;
         drive(inflight, n, [&](std::size_t, int x) {
           return smartasync::async_offload(pool, [x] { return trivial(x + int(trace_id::current)); });
         });
         trace_id::current = 0;
       },
       0, {}},
  };
  bench::alternate(cs, opts);
  // The table's ratio column is "first row / this row"; the features' costs read better the
  // other way round, so they are printed and recorded as feature / plain as well.
  bench::report(title, cs, out);
  fmt::print("{:<34} {:>16} {:>16}\n", "feature", "feature/plain", "extra ns/op");
  for (std::size_t i = 1; i < cs.size(); ++i) {
    const bench::spread r = bench::paired_ratio(cs[i], cs[0]);
    const double extra = bench::ns_per_op(cs[i]).median - bench::ns_per_op(cs[0]).median;
    fmt::print("{:<34} {:>10.3f} ({:.2f}-{:.2f}) {:>10.1f}\n", cs[i].name, r.median, r.min, r.max,
               extra);
    out.add(title, cs[i].name, "ratio_over_plain", r, "x");
    out.add(title, cs[i].name, "extra_ns_per_op", extra, "ns");
  }
}

} // namespace

int main(int argc, char** argv) {
  auto opts = bench::options::parse(argc, argv);
  bench::results out(opts);
  fmt::print("# serial lanes, deadlines and context carriers beside a plain offload ({} rounds, "
             "medians)\n",
             opts.rounds);
  for (std::size_t inflight : {1, 64})
    features_group(inflight, opts, out);
}
