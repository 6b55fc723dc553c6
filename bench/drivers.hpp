// bench/drivers.hpp - what the round-trip benchmarks drive: a trivial call, and coroutines.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_BENCH_DRIVERS_HPP
#define SMARTASYNC_BENCH_DRIVERS_HPP

#include "harness.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <cstddef>

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

} // namespace bench

#endif // SMARTASYNC_BENCH_DRIVERS_HPP
