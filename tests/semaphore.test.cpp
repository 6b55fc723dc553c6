// Test that the header is self-contained.
#include "smartasync/semaphore.hpp"

#include "common/test_support.hpp"

#include "common/catch.hpp"

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(strand.hpp)
#include SMARTASYNC_ASIO_HEADER(this_coro.hpp)
#include SMARTASYNC_ASIO_HEADER(thread_pool.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <new>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using test_support::code_of;

namespace {

// Counts what goes through it; a handler whose counter was moved out gives an allocator
// with no counter, which must never be used.
struct allocation_counts {
  int allocated = 0;
  int freed = 0;
  int without_counter = 0;
};

template <typename T>
struct counting_allocator {
  using value_type = T;
  std::shared_ptr<allocation_counts> counts;

  counting_allocator() = default;
  explicit counting_allocator(std::shared_ptr<allocation_counts> c) : counts(std::move(c)) {}
  template <typename U>
  counting_allocator(const counting_allocator<U>& other) : counts(other.counts) {}

  T* allocate(std::size_t n) {
    if (counts)
      ++counts->allocated;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) {
    if (counts)
      ++counts->freed;
    else
      ++fallback_frees();
    std::allocator<T>().deallocate(p, n);
  }
  static int& fallback_frees() {
    static int n = 0;
    return n;
  }
  template <typename U>
  bool operator==(const counting_allocator<U>& other) const noexcept {
    return counts == other.counts;
  }
};

// A handler with an allocator of its own, taken from state that a move leaves empty.
struct handler_with_allocator {
  using allocator_type = counting_allocator<void>;
  std::shared_ptr<allocation_counts> counts;
  bool* got_permit;

  allocator_type get_allocator() const noexcept { return allocator_type(counts); }
  void operator()(smartasync::error_code ec, smartasync::semaphore_permit p) {
    *got_permit = !ec && p;
  }
};

} // namespace

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

TEST_CASE("cancelling the only waiter loses no unit", "[semaphore][cancellation]") {
  // Asio 1.22 to 1.26 channels refuse try_send after their last waiting receive is cancelled
  // (chriskohlhoff/asio#1241): a semaphore built on one lost the unit released next, and a
  // sync waiting for all of its units hung.
  asio::io_context io;
  smartasync::async_semaphore sem(io.get_executor(), 2);
  auto a = sem.try_acquire();
  auto b = sem.try_acquire();
  asio::cancellation_signal cancel;
  smartasync::error_code result;
  bool got_permit = true;
  sem.async_acquire(asio::bind_cancellation_slot(
      cancel.slot(), [&](smartasync::error_code ec, smartasync::semaphore_permit p) {
        result = ec;
        got_permit = static_cast<bool>(p);
      }));
  io.poll();
  cancel.emit(asio::cancellation_type::terminal);
  io.poll();
  REQUIRE(result == asio::error::operation_aborted);
  CHECK_FALSE(got_permit);

  a.release();
  CHECK(sem.available() == 1);
  auto again = sem.try_acquire();
  CHECK(again); // the released unit is there to take
  again.release();
  b.release();
  int acquired = 0;
  for (int i = 0; i < 2; ++i)
    sem.async_acquire([&](smartasync::error_code ec, smartasync::semaphore_permit p) {
      CHECK_FALSE(ec);
      acquired += p ? 1 : 0;
    });
  io.restart(); // poll() ran out of work above, which stops an io_context
  io.run();
  CHECK(acquired == 2);
  CHECK(sem.available() == 2);
}

TEST_CASE("cancellation racing releases on other threads loses no unit", "[semaphore][cancellation]") {
  // Waiters on a strand cancel themselves while holders on the other thread release: every
  // unit must come back, whichever of cancel and hand-over wins each race.
  constexpr int permits = 2;
  constexpr int rounds = 2000;
  asio::thread_pool pool(2);
  smartasync::async_semaphore sem(pool.get_executor(), permits);
  auto strand = asio::make_strand(pool);
  std::atomic<int> granted{0};
  std::atomic<int> aborted{0};
  std::atomic<int> holders{0};
  std::atomic<int> most{0};
  for (int i = 0; i < rounds; ++i) {
    auto cancel = std::make_shared<asio::cancellation_signal>();
    asio::post(strand, [&, cancel, i] {
      sem.async_acquire(asio::bind_cancellation_slot(
          cancel->slot(), asio::bind_executor(strand, [&, cancel](smartasync::error_code ec,
                                                                  smartasync::semaphore_permit p) {
            if (ec) {
              CHECK_FALSE(p);
              ++aborted;
              return;
            }
            const int now = ++holders;
            int seen = most.load();
            while (now > seen && !most.compare_exchange_weak(seen, now)) {
            }
            ++granted;
            // Released on the pool, not the strand, so it races the strand's cancellations.
            asio::post(pool, [&, held = std::move(p)]() mutable {
              --holders;
              held.release();
            });
          })));
      if (i % 3 != 0) // every third waiter is never cancelled
        asio::post(strand, [cancel] { cancel->emit(asio::cancellation_type::terminal); });
    });
  }
  pool.join();
  CHECK(granted + aborted == rounds);
  CHECK(granted >= rounds / 3);
  CHECK(most <= permits);
  CHECK(sem.available() == permits);
  auto first = sem.try_acquire();
  auto second = sem.try_acquire();
  CHECK(first);
  CHECK(second);
}

TEST_CASE("a waiting acquire keeps its io_context running until a unit comes", "[semaphore]") {
  asio::io_context io;
  smartasync::async_semaphore sem(io.get_executor(), 1);
  auto held = sem.try_acquire();
  bool acquired = false;
  sem.async_acquire([&](smartasync::error_code ec, smartasync::semaphore_permit p) {
    acquired = !ec && p;
  });
  std::thread releaser([&] {
    std::this_thread::sleep_for(20ms); // lets run() find nothing else to do
    held.release();
  });
  io.run(); // returns only once the waiter has completed
  releaser.join();
  CHECK(acquired);
  CHECK(sem.available() == 1);
}

TEST_CASE("a unit handed to a context that is destroyed before it runs comes back", "[semaphore]") {
  asio::io_context io;
  smartasync::async_semaphore sem(io.get_executor(), 1);
  auto held = sem.try_acquire();
  bool invoked = false;
  {
    asio::io_context doomed;
    sem.async_acquire(asio::bind_executor(
        doomed, [&](smartasync::error_code, smartasync::semaphore_permit) { invoked = true; }));
    held.release(); // handed to the waiter: its completion is queued in `doomed`
    CHECK(sem.available() == 0);
  } // `doomed` is destroyed without running it
  CHECK_FALSE(invoked);
  CHECK(sem.available() == 1);
  CHECK(sem.try_acquire());
}

TEST_CASE("an acquire is allocated and freed with its handler's allocator", "[semaphore]") {
  asio::io_context io;
  smartasync::async_semaphore sem(io.get_executor(), 1);
  auto counts = std::make_shared<allocation_counts>();
  const int fallback_before = counting_allocator<void>::fallback_frees();
  bool first = false;
  bool second = false;
  sem.async_acquire(handler_with_allocator{counts, &first}); // a unit is free
  auto held = sem.try_acquire();
  CHECK_FALSE(held); // taken by the first acquire already
  io.run();
  CHECK(first);
  auto again = sem.try_acquire();
  sem.async_acquire(handler_with_allocator{counts, &second}); // waits, then is handed the unit
  again.release();
  io.restart();
  io.run();
  CHECK(second);
  CHECK(counts->allocated >= 2);
  CHECK(counts->freed == counts->allocated);
  CHECK(counting_allocator<void>::fallback_frees() == fallback_before);
}

TEST_CASE("destroying a semaphore destroys its waiting acquires without completing them",
          "[semaphore]") {
  asio::io_context io;
  auto token = std::make_shared<int>(0);
  bool invoked = false;
  {
    smartasync::async_semaphore sem(io.get_executor(), 1);
    // The only unit, held by a permit that is never released (its storage is never destroyed),
    // so the acquire below is still waiting when the semaphore goes.
    alignas(smartasync::semaphore_permit) unsigned char never_released[sizeof(smartasync::semaphore_permit)];
    new (never_released) smartasync::semaphore_permit(sem.try_acquire());
    sem.async_acquire([&invoked, token](smartasync::error_code, smartasync::semaphore_permit) { invoked = true; });
    io.poll();
    CHECK(token.use_count() == 2); // the waiting acquire holds its handler
  }
  CHECK(token.use_count() == 1); // destroyed with the semaphore
  io.restart();
  io.poll(); // nothing was posted for it either (poll: a leaked work guard must not hang this)
  CHECK_FALSE(invoked);
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
