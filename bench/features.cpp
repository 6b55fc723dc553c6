// bench/features.cpp - what serial lanes, deadlines and context carriers cost per round trip;
// how an elastic pool takes a burst.
// Distributed under the Boost Software License, Version 1.0.
//
// Each table alternates the feature with a plain async_offload to the same pool in one
// process (the harness's Williams rounds) and reports the paired ratio. A trivial function
// makes the round trip from an io_context coroutine to a pool of 2 and back, so the table
// shows the feature's overhead at its most visible; 1 in flight measures latency, 64 in
// flight throughput (each of the 64 coroutines on a lane of its own, as a server with one lane
// per connection would be).
//
// The elastic table sends a burst of 64 calls of 20 ms (blocking I/O stand-ins: they sleep) to
// a fresh pool each run, an elastic pool of 2 to 16 threads against a fixed pool of 16, and
// then measures how long an idle elastic pool takes to return to 2 threads.
#include <smartasync/context_carrier.hpp>
#include <smartasync/deadline.hpp>
#include <smartasync/offload.hpp>
#include <smartasync/serial_lane.hpp>

#include "drivers.hpp"
#include "harness.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <chrono>
#include <algorithm>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using bench::drive_awaitable;
using bench::trivial;

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
         drive_awaitable(inflight, n, [&](std::size_t, int x) {
           return smartasync::async_offload(pool, [x] { return trivial(x); });
         });
       },
       0, {}},
      {"async_offload(lane, f)",
       [&](std::size_t n) {
         drive_awaitable(inflight, n, [&](std::size_t k, int x) {
           return smartasync::async_offload(*lanes[k], [x] { return trivial(x); });
         });
       },
       0, {}},
      {"with_deadline(1h, use_awaitable)",
       [&](std::size_t n) {
         drive_awaitable(inflight, n, [&](std::size_t, int x) {
           return smartasync::async_offload(pool, [x] { return trivial(x); },
                                            smartasync::with_deadline(far, asio::use_awaitable));
         });
       },
       0, {}},
      {"one context carrier registered",
       [&](std::size_t n) {
         auto carried = smartasync::carry_context<trace_id>();
         trace_id::current = 42;
         drive_awaitable(inflight, n, [&](std::size_t, int x) {
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

// What a call pays for context carriers, without the round trip's noise around it: exactly
// what offload_op does per call (capture on the submitting thread, install around the call,
// install around the completion), with none registered and with one.
void carrier_cost_group(const bench::options& opts, bench::results& out) {
  const std::string title = "context carrier machinery per call";
  if (!opts.wanted(title))
    return;
  const auto per_call = [](std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      auto captured = smartasync::detail::capture_context();
      {
        smartasync::detail::context_scope call(captured.get());
        bench::keep(trace_id::current);
      }
      {
        smartasync::detail::context_scope completion(captured.get());
        bench::keep(trace_id::current);
      }
    }
  };
  std::vector<bench::contender> cs{
      {"one carrier registered",
       [&](std::size_t n) {
         auto carried = smartasync::carry_context<trace_id>();
         per_call(n);
       },
       0, {}},
      {"none registered", per_call, 0, {}},
  };
  trace_id::current = 42;
  bench::alternate(cs, opts);
  trace_id::current = 0;
  bench::report(title, cs, out);
  const double one = bench::ns_per_op(cs[0]).median, none = bench::ns_per_op(cs[1]).median;
  fmt::print("per call: {:.1f} ns with one carrier, {:.1f} ns with none\n", one, none);
  out.add(title, cs[0].name, "ns_per_call", bench::ns_per_op(cs[0]), "ns");
  out.add(title, cs[1].name, "ns_per_call", bench::ns_per_op(cs[1]), "ns");
}

// A burst of (at least 64) calls that sleep 20 ms, from a plain thread; returns when all
// have returned.
void burst(smartasync::blocking_pool& pool, std::size_t ops) {
  std::vector<std::future<void>> calls;
  for (std::size_t i = 0; i < std::max<std::size_t>(ops, 64); ++i)
    calls.push_back(smartasync::async_offload(
        pool, [] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }, asio::use_future));
  for (auto& call : calls)
    call.get();
}

// The same into a pool made for the run.
void burst_into(const smartasync::pool_options& options, std::size_t ops) {
  smartasync::blocking_pool pool{options};
  burst(pool, ops);
}

void elastic_group(const bench::options& opts, bench::results& out) {
  const std::string title = "elastic pool 2..16 vs fixed 16, burst of 64 calls of 20 ms";
  if (!opts.wanted(title))
    return;
  smartasync::pool_options fixed;
  fixed.threads = 16;
  smartasync::pool_options elastic;
  elastic.threads = 2;
  elastic.max_threads = 16;
  std::vector<bench::contender> cs{
      {"elastic 2..16 (grow_after 1 ms)", [&](std::size_t n) { burst_into(elastic, n); }, 0, {}},
      {"fixed 16", [&](std::size_t n) { burst_into(fixed, n); }, 0, {}},
  };
  bench::alternate(cs, opts);
  bench::report(title, cs, out);
  const bench::spread r = bench::paired_ratio(cs[0], cs[1]);
  fmt::print("elastic / fixed: {:.3f} ({:.2f}-{:.2f})\n", r.median, r.min, r.max);
  out.add(title, cs[0].name, "ratio_over_fixed", r, "x");

  // Back to the minimum: from the burst's end until thread_count() is 2 again.
  elastic.keep_alive = std::chrono::milliseconds(100);
  std::vector<double> back_ms;
  for (int round = 0; round < std::min(opts.rounds, 5); ++round) {
    smartasync::blocking_pool pool{elastic};
    burst(pool, 64);
    const auto end = std::chrono::steady_clock::now();
    while (pool.thread_count() > 2)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    back_ms.push_back(bench::seconds_since(end) * 1e3);
  }
  const bench::spread back = bench::summarize(back_ms);
  fmt::print("idle elastic pool back to 2 threads after the burst (keep-alive 100 ms): {:.0f} ms "
             "({:.0f}-{:.0f})\n", back.median, back.min, back.max);
  out.add(title, "elastic 2..16, keep-alive 100 ms", "back_to_min_ms", back, "ms");
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
  carrier_cost_group(opts, out);
  elastic_group(opts, out);
}
