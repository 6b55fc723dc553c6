// Test that the header is self-contained.
#include "smartasync/semaphore.hpp"

#include "common/test_support.hpp"

#include "common/catch.hpp"

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(this_coro.hpp)
#include SMARTASYNC_ASIO_HEADER(thread_pool.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)

#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

using namespace std::chrono_literals;
using test_support::code_of;

TEST_CASE("async_semaphore bounds the number of holders", "[semaphore]") {
  asio::io_context io;
  smartasync::async_semaphore sem(io.get_executor(), 3);
  int holders = 0;
  int most = 0;
  int finished = 0;
  for (int i = 0; i < 12; ++i) {
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      auto permit = co_await sem.async_acquire();
      most = std::max(most, ++holders);
      asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
      co_await timer.async_wait(asio::use_awaitable);
      --holders;
      ++finished;
    }, asio::detached);
  }
  io.run();
  CHECK(finished == 12);
  CHECK(most == 3);
  CHECK(sem.available() == 3);
}

TEST_CASE("async_semaphore serves waiters in FIFO order", "[semaphore]") {
  asio::io_context io;
  smartasync::async_semaphore sem(io.get_executor(), 1);
  auto held = sem.try_acquire();
  REQUIRE(held);
  CHECK(sem.available() == 0);
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) {
    asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
      auto permit = co_await sem.async_acquire();
      order.push_back(i);
      // Yield while holding, so the next waiter cannot overtake.
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }, asio::detached);
  }
  io.poll(); // all five are now queued, in spawn order
  CHECK(order.empty());
  held.release();
  io.run();
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
}

TEST_CASE("a cancelled acquire leaves the queue and takes nothing", "[semaphore][cancellation]") {
  asio::io_context io;
  smartasync::async_semaphore sem(io.get_executor(), 1);
  auto held = sem.try_acquire();
  asio::cancellation_signal cancel_first;
  smartasync::error_code first_result;
  bool first_got_permit = true;
  std::vector<int> acquired;

  sem.async_acquire(asio::bind_cancellation_slot(
      cancel_first.slot(), [&](smartasync::error_code ec, smartasync::semaphore_permit p) {
        first_result = ec;
        first_got_permit = static_cast<bool>(p);
      }));
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    auto permit = co_await sem.async_acquire();
    acquired.push_back(2);
  }, asio::detached);
  io.poll();

  cancel_first.emit(asio::cancellation_type::terminal);
  io.poll();
  CHECK(first_result == asio::error::operation_aborted);
  CHECK_FALSE(first_got_permit);
  CHECK(acquired.empty()); // the unit is still held by `held`

  held.release();
  io.run();
  CHECK(acquired == std::vector<int>{2}); // the second waiter got it, not the cancelled one
  CHECK(sem.available() == 1);
}

TEST_CASE("semaphore permits are RAII and movable", "[semaphore]") {
  asio::io_context io;
  smartasync::async_semaphore sem(io.get_executor(), 2);
  {
    auto a = sem.try_acquire();
    auto b = sem.try_acquire();
    CHECK(a);
    CHECK(b);
    CHECK_FALSE(sem.try_acquire());
    smartasync::semaphore_permit moved = std::move(a);
    CHECK_FALSE(a);
    CHECK(moved);
    CHECK(sem.available() == 0);
    moved.release();
    CHECK(sem.available() == 1);
    moved.release(); // releasing twice is a no-op
    CHECK(sem.available() == 1);
  }
  CHECK(sem.available() == 2);
  CHECK_THROWS_AS(smartasync::async_semaphore(io.get_executor(), 0), std::invalid_argument);
}

TEST_CASE("async_semaphore works across threads", "[semaphore]") {
  asio::thread_pool pool(2);
  smartasync::async_semaphore sem(pool.get_executor(), 2);
  std::atomic<int> holders{0};
  std::atomic<int> most{0};
  std::atomic<int> finished{0};
  for (int i = 0; i < 40; ++i) {
    asio::co_spawn(pool, [&]() -> asio::awaitable<void> {
      auto permit = co_await sem.async_acquire();
      const int now = ++holders;
      int seen = most.load();
      while (now > seen && !most.compare_exchange_weak(seen, now)) {
      }
      asio::steady_timer timer(co_await asio::this_coro::executor, 100us);
      co_await timer.async_wait(asio::use_awaitable);
      --holders;
      ++finished;
    }, asio::detached);
  }
  pool.join();
  CHECK(finished == 40);
  CHECK(most <= 2);
  CHECK(sem.available() == 2);
}
