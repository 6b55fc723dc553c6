// Test that the header is self-contained.
#include <smartasync/smartasync.hpp>

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(experimental/awaitable_operators.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(strand.hpp)
#include SMARTASYNC_ASIO_HEADER(this_coro.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)
#include "common/catch.hpp"

#include <atomic>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <thread>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace {

enum class outcome : int { none, value, std_exception, int_exception, aborted, stopped, other };

int stress_ops() {
  const char* env = std::getenv("SMARTASYNC_STRESS_OPS");
  return env ? std::max(1000, std::atoi(env)) : 200000;
}

} // namespace

// Hundreds of thousands of offloads from many coroutines over three io_context threads, with
// random timeouts (queued and running calls cancelled), random exceptions of two types, and the
// pool shut down part-way. Every operation must end exactly once, in an outcome that matches
// what it was asked to do, and the pool's counters must add up.
TEST_CASE("stress: every operation ends exactly once through cancellation, errors and shutdown",
          "[stress]") {
  const int total = stress_ops();
  constexpr int coroutines = 96;
  smartasync::blocking_pool pool{2, 64};
  asio::io_context ioc;
  std::vector<std::atomic<int>> ends(static_cast<std::size_t>(total));
  std::vector<std::atomic<outcome>> how(static_cast<std::size_t>(total));
  std::atomic<int> finished{0};
  std::atomic<bool> shut{false};
  std::atomic<int> wrong{0};

  auto record = [&](int i, outcome o) {
    ends[static_cast<std::size_t>(i)].fetch_add(1);
    how[static_cast<std::size_t>(i)].store(o);
    if (finished.fetch_add(1) + 1 == total / 2 && !shut.exchange(true))
      std::thread([&pool] { pool.shutdown(smartasync::shutdown_mode::cancel); }).detach();
  };

  // Three threads run the loop, so each coroutine gets a strand: the || below shares a
  // cancellation slot between its two operations, and Asio's slots are not thread-safe.
  for (int c = 0; c < coroutines; ++c)
    asio::co_spawn(asio::make_strand(ioc), [&, c]() -> asio::awaitable<void> {
      std::minstd_rand rng(static_cast<unsigned>(c) + 1);
      for (int i = c; i < total; i += coroutines) {
        const int kind = static_cast<int>(rng() % 10);
        auto work = [i, kind](std::stop_token token) -> int {
          if (kind == 0)
            throw std::runtime_error("boom");
          if (kind == 1)
            throw i;
          for (int spin = 0; spin < 20 && !token.stop_requested(); ++spin)
            std::this_thread::yield();
          return i;
        };
        try {
          if (kind >= 8) {
            // Race the call against a very short timer: cancels it queued or running.
            asio::steady_timer timer(co_await asio::this_coro::executor,
                                     std::chrono::microseconds(rng() % 300));
            auto r = co_await (smartasync::async_offload(pool, work) ||
                               timer.async_wait(asio::use_awaitable));
            if (r.index() == 0) {
              wrong += std::get<0>(r) != i;
              record(i, outcome::value);
            } else {
              record(i, outcome::aborted); // the timer won: the call was cancelled
            }
          } else {
            int v = co_await smartasync::async_offload(pool, work);
            wrong += v != i || kind <= 1;
            record(i, outcome::value);
          }
        } catch (const smartasync::system_error& e) { // before runtime_error: it derives from it
          if (e.code() == asio::error::operation_aborted)
            record(i, outcome::aborted);
          else if (e.code() == smartasync::error::pool_stopped)
            record(i, outcome::stopped);
          else
            record(i, outcome::other);
        } catch (const std::runtime_error&) {
          wrong += kind != 0;
          record(i, outcome::std_exception);
        } catch (int e) {
          wrong += kind != 1 || e != i;
          record(i, outcome::int_exception);
        }
      }
    }, asio::detached);

  std::thread t1([&] { ioc.run(); }), t2([&] { ioc.run(); });
  ioc.run();
  t1.join();
  t2.join();
  pool.shutdown(); // joins (the detached shutdown may still be finishing)

  int exactly_once = 0, other = 0, aborted = 0, stopped = 0, values = 0;
  for (int i = 0; i < total; ++i) {
    exactly_once += ends[static_cast<std::size_t>(i)] == 1;
    switch (how[static_cast<std::size_t>(i)].load()) {
    case outcome::other:
    case outcome::none:
      ++other;
      break;
    case outcome::aborted:
      ++aborted;
      break;
    case outcome::stopped:
      ++stopped;
      break;
    case outcome::value:
      ++values;
      break;
    default:
      break;
    }
  }
  CHECK(exactly_once == total);
  CHECK(other == 0);
  CHECK(wrong == 0);
  CHECK(values > 0);
  CHECK(aborted > 0);
  CHECK(stopped > 0); // the shutdown really happened mid-run
  const auto s = pool.stats();
  // Every submission ended once in the pool's books too.
  CHECK(s.submitted == s.completed + s.failed + s.cancelled + s.rejected);
  CHECK(s.queued == 0);
  CHECK(s.running == 0);
  INFO(fmt::format("{}", pool.metrics()));
}
