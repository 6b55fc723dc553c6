// bench/offload.cpp - offload round trips: smartasync beside the hand-written alternatives.
// Distributed under the Boost Software License, Version 1.0.
//
// A trivial non-inlined function makes a round trip from an io_context to a pool and back, so
// what is measured is the mechanism. One caller in flight measures latency; 64 coroutines in
// flight measure throughput. Pools of 1, 2 and 4 workers. Every table alternates smartasync
// and its baselines in rounds inside this one process:
//   smartasync  co_await w.async_call(x) / callback / use_future
//   lean        async_initiate + post to asio::thread_pool + dispatch back (bench/baselines.hpp)
//   co_spawn    co_spawn(asio::thread_pool, awaitable, use_awaitable)
//   std::async  std::async(std::launch::async, f, x).get(), from a plain thread
//   no spin     smartasync with pool_options::spin_before_park = 0: what the
//               worker's short spin buys, and what CPU it costs
//   floor       (one in flight only) a thread that spins forever on a mailbox, so only the
//               loop's own wake-up is paid: no design that lets the loop sleep beats it
#include "baselines.hpp"
#include "drivers.hpp"
#include "harness.hpp"

#include <smartasync/smart_async.hpp>

#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <future>
#include <thread>

namespace {

using bench::drive_awaitable;
using bench::drive_callback;
using bench::drive_future;
using bench::trivial;

smartasync::pool_options no_spin(std::size_t threads) {
  return smartasync::pool_options{.threads = threads,
                                  .spin_before_park = std::chrono::microseconds{0}};
}

struct call_trivial {
  int operator()(int x) const noexcept { return trivial(x); }
};

// What every table offloads to, `threads` workers each: smartasync's pool as configured by
// default and with the spin off, and the asio::thread_pool of the baselines.
struct subjects {
  explicit subjects(std::size_t threads)
      : pool{threads}, pool_no_spin{no_spin(threads)}, tp{threads},
        w{smartasync::smart_async(pool, call_trivial{})},
        w_no_spin{smartasync::smart_async(pool_no_spin, call_trivial{})} {}
  smartasync::blocking_pool pool;
  smartasync::blocking_pool pool_no_spin;
  asio::thread_pool tp;
  smartasync::smart_async_function<call_trivial> w;
  smartasync::smart_async_function<call_trivial> w_no_spin;
};

std::future<int> std_async(int x) { return std::async(std::launch::async, trivial, x); }

void awaitable_group(std::size_t threads, std::size_t inflight, const bench::options& opts,
                     bench::results& out) {
  const std::string title = fmt::format("await, {} in flight, pool of {}", inflight, threads);
  if (!opts.wanted(title))
    return;
  subjects s{threads};
  std::vector<bench::contender> cs{
      {"smartasync co_await w.async_call(x)",
       [&](std::size_t n) {
         drive_awaitable(inflight, n, [&](std::size_t, int x) { return s.w.async_call(x, asio::use_awaitable); });
       },
       0, {}},
      {"smartasync, no spin (spin_before_park=0)",
       [&](std::size_t n) {
         drive_awaitable(inflight, n,
                         [&](std::size_t, int x) { return s.w_no_spin.async_call(x, asio::use_awaitable); });
       },
       0, {}},
      {"lean async_initiate+thread_pool",
       [&](std::size_t n) {
         drive_awaitable(inflight, n, [&](std::size_t, int x) {
           return bench::lean_offload(s.tp, [x] { return trivial(x); }, asio::use_awaitable);
         });
       },
       0, {}},
      {"co_spawn(thread_pool, use_awaitable)",
       [&](std::size_t n) {
         drive_awaitable(inflight, n, [&](std::size_t, int x) {
           return asio::co_spawn(
               s.tp, [x]() -> asio::awaitable<int> { co_return trivial(x); }, asio::use_awaitable);
         });
       },
       0, {}},
      {"std::async(...).get()", [&](std::size_t n) { drive_future(inflight, n, std_async); }, 0,
       {}},
  };
  if (inflight == 64)
    // What any offload pays on the loop at least: the coroutine suspends, its completion goes
    // through the io_context's queue, and it resumes. No other thread, no pool: the loop thread
    // is what limits 64 calls in flight, so no offload to a pool can be faster than this.
    cs.push_back({"floor: co_await post to its own loop",
                  [&](std::size_t n) {
                    drive_awaitable(inflight, n, [](std::size_t, int x) -> asio::awaitable<int> {
                      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
                      co_return trivial(x);
                    });
                  },
                  0, {}});
  if (inflight == 1)
    cs.push_back({"floor: always-spinning thread",
                  [&](std::size_t n) {
                    bench::spinning_thread spinner; // spins only while this contender runs
                    drive_awaitable(1, n, [&](std::size_t, int x) {
                      return spinner.offload([x] { return trivial(x); }, asio::use_awaitable);
                    });
                  },
                  0, {}});
  bench::alternate(cs, opts);
  bench::report(title, cs, out);
}

void callback_group(std::size_t threads, std::size_t inflight, const bench::options& opts,
                    bench::results& out) {
  const std::string title = fmt::format("callback, {} in flight, pool of {}", inflight, threads);
  if (!opts.wanted(title))
    return;
  subjects s{threads};
  std::vector<bench::contender> cs{
      {"smartasync w.async_call(x, callback)",
       [&](std::size_t n) {
         drive_callback(inflight, n,
                        [&](int x, auto handler) { s.w.async_call(x, std::move(handler)); });
       },
       0, {}},
      {"smartasync, no spin (spin_before_park=0)",
       [&](std::size_t n) {
         drive_callback(inflight, n,
                        [&](int x, auto handler) { s.w_no_spin.async_call(x, std::move(handler)); });
       },
       0, {}},
      {"lean async_initiate+thread_pool",
       [&](std::size_t n) {
         drive_callback(inflight, n, [&](int x, auto handler) {
           bench::lean_offload(s.tp, [x] { return trivial(x); }, std::move(handler));
         });
       },
       0, {}},
  };
  bench::alternate(cs, opts);
  bench::report(title, cs, out);
}

void future_group(std::size_t threads, std::size_t inflight, const bench::options& opts,
                  bench::results& out) {
  const std::string title = fmt::format("use_future, {} in flight, pool of {}", inflight, threads);
  if (!opts.wanted(title))
    return;
  subjects s{threads};
  std::vector<bench::contender> cs{
      {"smartasync w.async_call(x, use_future)",
       [&](std::size_t n) {
         drive_future(inflight, n, [&](int x) { return s.w.async_call(x, asio::use_future); });
       },
       0, {}},
      {"smartasync, no spin (spin_before_park=0)",
       [&](std::size_t n) {
         drive_future(inflight, n, [&](int x) { return s.w_no_spin.async_call(x, asio::use_future); });
       },
       0, {}},
      {"lean async_initiate+thread_pool",
       [&](std::size_t n) {
         drive_future(inflight, n, [&](int x) {
           return bench::lean_offload(s.tp, [x] { return trivial(x); }, asio::use_future);
         });
       },
       0, {}},
      {"std::async(...).get()", [&](std::size_t n) { drive_future(inflight, n, std_async); }, 0,
       {}},
  };
  bench::alternate(cs, opts);
  bench::report(title, cs, out);
}

} // namespace

int main(int argc, char** argv) {
  auto opts = bench::options::parse(argc, argv);
  bench::results out(opts);
  fmt::print("# offload round trip of a trivial function ({} rounds, medians; ratio = "
             "smartasync / that row, paired per round)\n",
             opts.rounds);
  const std::vector<std::size_t> pools =
      opts.quick ? std::vector<std::size_t>{2} : std::vector<std::size_t>{1, 2, 4};

  for (std::size_t threads : pools)
    for (std::size_t inflight : {1, 64})
      awaitable_group(threads, inflight, opts, out);
  for (std::size_t threads : pools)
    for (std::size_t inflight : {1, 64})
      callback_group(threads, inflight, opts, out);
  for (std::size_t threads : pools)
    for (std::size_t inflight : {1, 64})
      future_group(threads, inflight, opts, out);

  if (!opts.wanted("idle cpu"))
    return 0;
  const double idle_seconds = opts.quick ? 0.3 : 1.0;
  fmt::print("\n## idle CPU over {} s, right after a burst of 1000 round trips (user+sys, % of one "
             "core)\n", idle_seconds);
  {
    smartasync::blocking_pool pool{4};
    auto w = smartasync::smart_async(pool, [](int x) { return trivial(x); });
    const double pct = bench::idle_cpu_percent(pool, [&](auto&) {
      drive_awaitable(1, 1000, [&](std::size_t, int x) { return w.async_call(x, asio::use_awaitable); });
    }, idle_seconds);
    fmt::print("{:<34} {:>8.2f} %\n", "smartasync blocking_pool{4}", pct);
    out.add("idle cpu", "smartasync blocking_pool{4}", "cpu_percent", pct, "%");
  }
  {
    asio::thread_pool tp{4};
    const double pct = bench::idle_cpu_percent(tp, [&](auto&) {
      drive_awaitable(1, 1000, [&](std::size_t, int x) {
        return bench::lean_offload(tp, [x] { return trivial(x); }, asio::use_awaitable);
      });
    }, idle_seconds);
    fmt::print("{:<34} {:>8.2f} %\n", "asio::thread_pool{4}", pct);
    out.add("idle cpu", "asio::thread_pool{4}", "cpu_percent", pct, "%");
  }
}
