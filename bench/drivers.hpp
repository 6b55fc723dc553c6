// bench/drivers.hpp - what the round-trip benchmarks drive: a trivial call, and coroutines.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_BENCH_DRIVERS_HPP
#define SMARTASYNC_BENCH_DRIVERS_HPP

#include "harness.hpp"

#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include <cstddef>
#include <exception>
#include <future>
#include <vector>

namespace bench {

// The offloaded function: not inlined and not optimised away, so that what is measured is the
// mechanism around it.
[[gnu::noinline]] inline int trivial(int x) noexcept {
  keep(x);
  return x + 1;
}

// `inflight` coroutines on one io_context, coroutine k awaiting n / inflight round trips
// through op(k, i) in sequence.
template <typename Op>
void drive_awaitable(std::size_t inflight, std::size_t n, Op op) {
  asio::io_context ctx;
  const std::size_t per = n / inflight;
  for (std::size_t k = 0; k < inflight; ++k)
    asio::co_spawn(
        ctx,
        [&op, per, k]() -> asio::awaitable<void> {
          for (std::size_t i = 0; i < per; ++i) {
            const int r = co_await op(k, int(i));
            keep(r);
          }
        },
        asio::detached);
  ctx.run();
}

// `inflight` callback chains on one io_context; each completion starts the next call.
template <typename Start>
void drive_callback(std::size_t inflight, std::size_t n, Start start) {
  asio::io_context ctx;
  struct chain {
    asio::io_context* ctx;
    Start* start;
    std::size_t left;
    void next() {
      if (left-- == 0)
        return;
      (*start)(int(left), asio::bind_executor(*ctx, [this](std::exception_ptr, int r) {
                 keep(r);
                 next();
               }));
    }
  };
  std::vector<chain> chains(inflight, chain{&ctx, &start, n / inflight});
  asio::post(ctx, [&] {
    for (auto& c : chains)
      c.next();
  });
  ctx.run();
}

// From a plain thread: start `inflight` futures, wait for all, repeat.
template <typename Start>
void drive_future(std::size_t inflight, std::size_t n, Start start) {
  std::vector<std::future<int>> futures;
  futures.reserve(inflight);
  for (std::size_t done = 0; done < n; done += inflight) {
    for (std::size_t k = 0; k < inflight; ++k)
      futures.push_back(start(int(k)));
    for (auto& f : futures) {
      const int r = f.get();
      keep(r);
    }
    futures.clear();
  }
}

} // namespace bench

#endif // SMARTASYNC_BENCH_DRIVERS_HPP
