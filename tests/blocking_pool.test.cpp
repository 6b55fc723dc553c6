// Test that the header is self-contained.
#include <smartasync/blocking_pool.hpp>

#include "common/test_support.hpp"
#include "common/thread_names.hpp"

#include <smartasync/offload.hpp>
#include <smartasync/smart_async.hpp>

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(executor_work_guard.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)
#include "common/catch.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

using test_support::gate;

namespace {

using test_support::code_of;

// Occupies every worker of `pool` until the returned gate opens.
std::vector<std::future<void>> occupy(smartasync::blocking_pool& pool, gate& release) {
  std::vector<std::future<void>> busy;
  for (std::size_t i = 0; i < pool.thread_count(); ++i)
    busy.push_back(smartasync::async_offload(pool, [&] { release.wait(); }, asio::use_future));
  while (pool.stats().running < pool.thread_count())
    std::this_thread::yield();
  return busy;
}

} // namespace

TEST_CASE("a pool needs a thread and a queue slot", "[blocking_pool]") {
  CHECK_THROWS_AS(smartasync::blocking_pool(0, 1), std::invalid_argument);
  CHECK_THROWS_AS(smartasync::blocking_pool(1, 0), std::invalid_argument);
  smartasync::blocking_pool pool{3, 7, smartasync::full_policy::reject};
  CHECK(pool.thread_count() == 3);
  CHECK(pool.queue_capacity() == 7);
  CHECK(pool.when_full() == smartasync::full_policy::reject);
}

TEST_CASE("at most `threads` calls run at once", "[blocking_pool]") {
  smartasync::blocking_pool pool{3};
  std::atomic<int> now{0}, peak{0};
  std::vector<std::future<void>> done;
  for (int i = 0; i < 200; ++i)
    done.push_back(smartasync::async_offload(pool, [&] {
      int n = ++now;
      int p = peak.load();
      while (n > p && !peak.compare_exchange_weak(p, n)) {
      }
      std::this_thread::yield();
      --now;
    }, asio::use_future));
  for (auto& f : done)
    f.get();
  CHECK(peak <= 3);
  CHECK(peak >= 1);
  CHECK(pool.stats().completed == 200);
}

// A burst wakes one parked worker, which wakes the next while work remains: every worker must
// still join in. Each call waits until all of them run at once, so a lost wake-up hangs here
// (and fails on the test's timeout) instead of passing slowly.
TEST_CASE("a burst of blocking calls reaches every worker", "[blocking_pool]") {
  constexpr std::size_t workers = 4;
  smartasync::blocking_pool pool{workers};
  for (int round = 0; round < 20; ++round) {
    std::latch all_running{workers};
    asio::io_context ioc;
    std::size_t done = 0;
    for (std::size_t i = 0; i < workers; ++i)
      smartasync::async_offload(pool, [&] { all_running.arrive_and_wait(); },
                                asio::bind_executor(ioc, [&](std::exception_ptr e) {
                                  CHECK_FALSE(e);
                                  ++done;
                                }));
    ioc.run();
    CHECK(done == workers);
  }
}

TEST_CASE("reject policy refuses work beyond the capacity with queue_full", "[blocking_pool]") {
  smartasync::blocking_pool pool{1, 2, smartasync::full_policy::reject};
  gate release;
  auto busy = occupy(pool, release);
  auto a = smartasync::async_offload(pool, [] { return 1; }, asio::use_future);
  auto b = smartasync::async_offload(pool, [] { return 2; }, asio::use_future);
  auto c = smartasync::async_offload(pool, [] { return 3; }, asio::use_future);
  try {
    c.get();
    FAIL("expected queue_full");
  } catch (const smartasync::system_error& e) {
    CHECK(e.code() == smartasync::error::queue_full);
  }
  release.open();
  CHECK(a.get() + b.get() == 3); // nothing accepted was lost
  CHECK(pool.stats().rejected == 1);
}

TEST_CASE("wait policy blocks a submitting plain thread until space frees", "[blocking_pool]") {
  smartasync::blocking_pool pool{1, 1};
  gate release;
  auto busy = occupy(pool, release);
  auto first = smartasync::async_offload(pool, [] { return 1; }, asio::use_future);
  std::atomic<bool> submitted{false};
  std::future<int> second;
  std::thread producer([&] {
    second = smartasync::async_offload(pool, [] { return 2; }, asio::use_future);
    submitted = true;
  });
  while (pool.stats().blocked_submitters != 1)
    std::this_thread::yield();
  CHECK_FALSE(submitted); // still inside the submission
  release.open();
  producer.join();
  CHECK(submitted);
  CHECK(first.get() == 1);
  CHECK(second.get() == 2);
}

TEST_CASE("wait policy parks event-loop submissions in order without blocking the loop",
          "[blocking_pool]") {
  smartasync::blocking_pool pool{1, 1};
  gate release;
  auto busy = occupy(pool, release);
  asio::io_context ioc;
  std::vector<int> order;
  smartasync::pool_stats seen;
  asio::post(ioc, [&] {
    for (int i = 0; i < 4; ++i)
      smartasync::async_offload(pool, [i] { return i; },
                                asio::bind_executor(ioc, [&](std::exception_ptr, int v) {
                                  order.push_back(v);
                                }));
    seen = pool.stats(); // we got here: the loop thread was not blocked
    release.open();
  });
  ioc.run();
  CHECK(seen.queued == 1);
  CHECK(seen.parked == 3);
  CHECK(order == std::vector<int>{0, 1, 2, 3});
}

// The former name stays one release and still works (its deprecation warning silenced here,
// where using it is the point).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
TEST_CASE("the former pool_stats::waiting still counts parked submissions",
          "[blocking_pool][deprecated]") {
  smartasync::blocking_pool pool{1, 1};
  gate release;
  auto busy = occupy(pool, release);
  asio::io_context ioc;
  smartasync::pool_stats seen;
  asio::post(ioc, [&] {
    for (int i = 0; i < 3; ++i)
      smartasync::async_offload(pool, [] {}, asio::bind_executor(ioc, [](std::exception_ptr) {}));
    seen = pool.stats();
    release.open();
  });
  ioc.run();
  CHECK(seen.parked == 2);
  CHECK(seen.waiting == seen.parked);
}
#pragma GCC diagnostic pop

TEST_CASE("a blocked thread and parked loop submissions are admitted in FIFO order",
          "[blocking_pool]") {
  // Without one FIFO across both, a thread blocked on a full queue starves for as long as an
  // event loop keeps parking operations ahead of it.
  smartasync::blocking_pool pool{1, 1};
  gate release;
  auto busy = occupy(pool, release);
  std::mutex order_mutex;
  std::vector<std::string> order;
  auto record = [&](std::string name) {
    return [&order_mutex, &order, name] {
      std::lock_guard lock(order_mutex);
      order.push_back(name);
    };
  };
  asio::io_context ioc;
  auto guard = asio::make_work_guard(ioc);
  std::thread loop([&] { ioc.run(); });
  auto from_loop = [&](std::vector<std::string> names) {
    asio::post(ioc, [&, names] {
      for (const auto& name : names)
        smartasync::async_offload(pool, record(name), asio::bind_executor(ioc, [](std::exception_ptr) {}));
    });
  };
  auto wait_for = [&](std::size_t waiting, std::size_t blocked) {
    while (pool.stats().parked != waiting || pool.stats().blocked_submitters != blocked)
      std::this_thread::yield();
  };
  from_loop({"loop 1", "loop 2"}); // "loop 1" takes the one queue slot, "loop 2" parks
  wait_for(1, 0);
  std::thread producer([&] {
    smartasync::async_offload(pool, record("thread"), asio::use_future).get();
  });
  wait_for(2, 1);
  from_loop({"loop 3", "loop 4"}); // arrive after the blocked thread: admitted after it
  wait_for(4, 1);
  release.open();
  producer.join();
  for (auto& b : busy)
    b.get();
  guard.reset();
  loop.join();
  CHECK(order == std::vector<std::string>{"loop 1", "loop 2", "thread", "loop 3", "loop 4"});
  const auto stats = pool.stats();
  CHECK(stats.submitted == 6);
  CHECK(stats.completed == 6);
}

TEST_CASE("a cancellation that arrives after the pool was destroyed is ignored safely",
          "[blocking_pool][shutdown][cancel]") {
  // ~blocking_pool aborts a queued call and posts its completion; until that completion runs,
  // the call's cancellation handler is still installed. A timer firing in that window must
  // not reach into the destroyed pool.
  asio::io_context ioc;
  asio::cancellation_signal signal;
  std::exception_ptr outcome;
  int calls = 0;
  {
    smartasync::blocking_pool pool{1};
    gate started;
    auto busy = smartasync::async_offload(pool, [&](std::stop_token token) {
      started.open();
      test_support::wait_for_stop(token); // until the destructor's shutdown(cancel)
    }, asio::use_future);
    started.wait();
    smartasync::async_offload(pool, [] { return 1; },
                              asio::bind_cancellation_slot(signal.slot(),
                                  asio::bind_executor(ioc, [&](std::exception_ptr e, int) {
                                    outcome = e;
                                    ++calls;
                                  })));
  }
  signal.emit(asio::cancellation_type::terminal);
  ioc.run();
  CHECK(calls == 1);
  CHECK(code_of(outcome) == asio::error::operation_aborted);
}

TEST_CASE("shutdown(drain) runs everything accepted", "[blocking_pool][shutdown]") {
  smartasync::blocking_pool pool{1, 100};
  gate release;
  auto busy = occupy(pool, release);
  std::atomic<int> ran{0};
  for (int i = 0; i < 50; ++i)
    smartasync::async_offload(pool, [&] { ++ran; }, asio::detached);
  std::thread opener([&] { release.open(); });
  pool.shutdown(smartasync::shutdown_mode::drain);
  opener.join();
  CHECK(ran == 50);
  CHECK(pool.stats().completed == 51);
  CHECK(pool.stopped());
}

TEST_CASE("shutdown(cancel) aborts queued work and stops running work",
          "[blocking_pool][shutdown]") {
  smartasync::blocking_pool pool{1, 100};
  gate started;
  auto running = smartasync::async_offload(pool, [&](std::stop_token token) {
    started.open();
    while (!token.stop_requested())
      std::this_thread::yield();
    return 5;
  }, asio::use_future);
  started.wait();
  std::vector<std::future<int>> queued;
  for (int i = 0; i < 10; ++i)
    queued.push_back(smartasync::async_offload(pool, [] { return 1; }, asio::use_future));
  pool.shutdown(smartasync::shutdown_mode::cancel);
  CHECK(running.get() == 5); // it ran, so it completes with its own result
  int aborted = 0;
  for (auto& f : queued) {
    try {
      f.get();
    } catch (const smartasync::system_error& e) {
      aborted += e.code() == asio::error::operation_aborted;
    }
  }
  CHECK(aborted == 10);
  CHECK(pool.stats().cancelled == 10);
}

TEST_CASE("submissions after shutdown complete with pool_stopped", "[blocking_pool][shutdown]") {
  smartasync::blocking_pool pool{1};
  pool.shutdown();
  pool.shutdown(); // idempotent
  std::exception_ptr outcome;
  asio::io_context ioc;
  smartasync::async_offload(pool, [] { return 1; },
                            asio::bind_executor(ioc, [&](std::exception_ptr e, int) { outcome = e; }));
  ioc.run();
  CHECK(code_of(outcome) == smartasync::error::pool_stopped);
  CHECK(pool.stats().rejected == 1);
}

TEST_CASE("a nested call from a call still running while its pool shuts down runs inline",
          "[blocking_pool][shutdown]") {
  // Later submissions get pool_stopped, but a nested call is part of the call making it, which
  // shutdown lets finish: it runs on that worker and returns its value.
  const auto mode = GENERATE(smartasync::shutdown_mode::drain, smartasync::shutdown_mode::cancel);
  smartasync::blocking_pool pool{1};
  gate started;
  std::promise<int> nested;
  auto outer = smartasync::async_offload(pool, [&] {
    started.open();
    while (!pool.stopped())
      std::this_thread::yield();
    smartasync::async_offload(pool, [] { return 5; }, [&nested](std::exception_ptr e, int v) {
      nested.set_value(e ? -1 : v);
    });
    return std::this_thread::get_id();
  }, asio::use_future);
  started.wait();
  std::thread stopper([&] { pool.shutdown(mode); });
  const std::thread::id worker = outer.get();
  CHECK(worker != std::this_thread::get_id());
  CHECK(nested.get_future().get() == 5);
  stopper.join();
  const auto s = pool.stats();
  CHECK(s.submitted == 2);
  CHECK(s.completed == 2);
  auto late = smartasync::async_offload(pool, [] { return 1; }, asio::use_future);
  CHECK(test_support::code_thrown_by([&] { late.get(); }) == smartasync::error::pool_stopped);
}

TEST_CASE("shutdown from the pool's own worker joins the other workers and returns",
          "[blocking_pool][shutdown]") {
  smartasync::blocking_pool pool{2};
  gate other_started, release_other;
  std::atomic<bool> other_returned{false};
  auto other = smartasync::async_offload(pool, [&] {
    other_started.open();
    release_other.wait();
    other_returned = true;
  }, asio::use_future);
  other_started.wait();
  auto from_worker = smartasync::async_offload(pool, [&] {
    release_other.open();
    pool.shutdown(); // returns once the other worker is joined
    return other_returned.load();
  }, asio::use_future);
  CHECK(from_worker.get());
  other.get();
  CHECK(pool.stopped());
  auto late = smartasync::async_offload(pool, [] { return 1; }, asio::use_future);
  CHECK(test_support::code_thrown_by([&] { late.get(); }) == smartasync::error::pool_stopped);
}

TEST_CASE("shutdown from a worker returns while another thread's shutdown is joining that worker",
          "[blocking_pool][shutdown]") {
  smartasync::blocking_pool pool{2};
  gate in_call, proceed;
  auto from_worker = smartasync::async_offload(pool, [&] {
    in_call.open();
    proceed.wait();
    pool.shutdown(); // the other thread is joining this very worker meanwhile
    return true;
  }, asio::use_future);
  in_call.wait();
  std::thread outside([&] { pool.shutdown(); });
  // Let the outside shutdown reach the join of the worker above before that worker shuts down
  // too (ordering help only: either order must return).
  while (!pool.stopped())
    std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  proceed.open();
  CHECK(from_worker.get());
  outside.join(); // a hang here is the failure (the test's timeout turns it into one)
  CHECK(pool.stats().running == 0);
}

TEST_CASE("two calls shutting their own pool down at once both return", "[blocking_pool][shutdown]") {
  smartasync::blocking_pool pool{2};
  std::latch both_in{2};
  auto shut_down_from_call = [&] {
    both_in.arrive_and_wait(); // each worker is in a call when the other shuts down
    pool.shutdown();
    return std::this_thread::get_id();
  };
  auto a = smartasync::async_offload(pool, shut_down_from_call, asio::use_future);
  auto b = smartasync::async_offload(pool, shut_down_from_call, asio::use_future);
  CHECK(a.get() != b.get()); // a hang here is the failure
  CHECK(pool.stopped());
}

TEST_CASE("a pool whose last owner is dropped on its own worker is destroyed there",
          "[blocking_pool][shutdown]") {
  // A completion handler without an executor runs on the worker; if it drops the last
  // shared_ptr to the pool, ~blocking_pool runs on that worker, which cannot join itself.
  auto pool = std::make_shared<smartasync::blocking_pool>(2);
  std::weak_ptr<smartasync::blocking_pool> watch = pool;
  gate proceed;
  std::promise<std::thread::id> destroyed_on;
  std::thread::id worker;
  smartasync::async_offload(*pool, [&] {
        proceed.wait();
        return std::this_thread::get_id();
      },
      [owner = pool, &destroyed_on](std::exception_ptr, std::thread::id id) mutable {
        owner.reset(); // the last reference: the pool is destroyed here, on its worker
        destroyed_on.set_value(id);
      });
  pool.reset();
  CHECK_FALSE(watch.expired()); // the handler still owns it
  proceed.open();
  worker = destroyed_on.get_future().get();
  CHECK(watch.expired());
  CHECK(worker != std::this_thread::get_id());
}

TEST_CASE("a pool whose last owner is released inside a call on it still completes that call",
          "[blocking_pool][shutdown]") {
  // The call owns the last shared_ptr to its pool (as a wrapper's argument or a capture may)
  // and drops it while it runs: ~blocking_pool runs on the worker, inside the call, and the
  // worker still counts and delivers the call's outcome once it returns. (Not make_shared,
  // whose block the weak_ptr below would keep allocated: the pool's memory is freed at once.)
  std::shared_ptr<smartasync::blocking_pool> pool(new smartasync::blocking_pool(2));
  std::weak_ptr<smartasync::blocking_pool> watch = pool;
  auto last_owner = std::make_shared<std::shared_ptr<smartasync::blocking_pool>>(pool);
  smartasync::blocking_pool* const raw = pool.get();
  gate proceed;
  std::promise<int> outcome;
  std::atomic<int> destroyed_inside{0};
  auto release_pool = [last_owner, &destroyed_inside, &watch] {
    last_owner->reset(); // the pool is destroyed here, on its own worker
    destroyed_inside += watch.expired() ? 1 : 0;
    return 7;
  };
  auto deliver = [&outcome](std::exception_ptr e, int v) { outcome.set_value(e ? -1 : v); };

  SECTION("the call itself") {
    smartasync::async_offload(*pool, [&proceed, release_pool] {
      proceed.wait();
      return release_pool();
    }, deliver);
  }
  SECTION("a nested call, run inline on the worker") {
    smartasync::async_offload(*pool, [&proceed, raw, release_pool, deliver] {
      proceed.wait();
      smartasync::async_offload(*raw, release_pool, deliver);
      return 0;
    }, [](std::exception_ptr, int) {});
  }
  pool.reset();
  CHECK_FALSE(watch.expired()); // the call still owns it
  proceed.open();
  CHECK(outcome.get_future().get() == 7);
  CHECK(destroyed_inside.load() == 1);
  CHECK(watch.expired());
}

TEST_CASE("destroying a pool under awaiting coroutines aborts them cleanly",
          "[blocking_pool][shutdown]") {
  asio::io_context ioc;
  std::atomic<int> aborted{0}, finished{0};
  {
    smartasync::blocking_pool pool{1, 4};
    // The worker stays busy until the destructor's shutdown(cancel) asks it to stop, so all
    // eight submissions are still queued or parked when the pool goes away.
    gate started;
    smartasync::async_offload(pool, [&](std::stop_token token) {
      started.open();
      while (!token.stop_requested())
        std::this_thread::yield();
    }, asio::detached);
    started.wait();
    for (int i = 0; i < 8; ++i)
      asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
        try {
          co_await smartasync::async_offload(pool, [] {});
          ++finished;
        } catch (const smartasync::system_error& e) {
          aborted += e.code() == asio::error::operation_aborted;
        }
      }, asio::detached);
    ioc.poll(); // every coroutine has submitted and is suspended
    CHECK(pool.stats().queued + pool.stats().parked == 8);
  } // ~blocking_pool: shutdown(cancel)
  ioc.run();
  CHECK(aborted + finished == 8);
  CHECK(aborted == 8);
}

TEST_CASE("the default pool is sized from the environment", "[blocking_pool]") {
  ::setenv("SMARTASYNC_POOL_THREADS", "3", 1);
  ::setenv("SMARTASYNC_POOL_QUEUE", "17", 1);
  ::setenv("SMARTASYNC_POOL_WHEN_FULL", "reject", 1);
  auto options = smartasync::detail::default_pool_options();
  CHECK(options.threads == 3);
  CHECK(options.queue_capacity == 17);
  CHECK(options.when_full == smartasync::full_policy::reject);
  CHECK(options.max_threads == 0); // fixed unless asked
  ::setenv("SMARTASYNC_POOL_MAX_THREADS", "12", 1);
  CHECK(smartasync::detail::default_pool_options().max_threads == 12);
  ::setenv("SMARTASYNC_POOL_MAX_THREADS", "2", 1); // below the threads: still fixed
  CHECK(smartasync::detail::default_pool_options().max_threads == 0);
  ::unsetenv("SMARTASYNC_POOL_MAX_THREADS");

  ::setenv("SMARTASYNC_POOL_THREADS", "lots", 1);
  ::setenv("SMARTASYNC_POOL_QUEUE", "0", 1);
  ::setenv("SMARTASYNC_POOL_WHEN_FULL", "panic", 1);
  options = smartasync::detail::default_pool_options();
  CHECK(options.threads >= 4); // invalid values fall back to the defaults
  CHECK(options.queue_capacity == 1024);
  CHECK(options.when_full == smartasync::full_policy::wait);
  ::unsetenv("SMARTASYNC_POOL_THREADS");
  ::unsetenv("SMARTASYNC_POOL_QUEUE");
  ::unsetenv("SMARTASYNC_POOL_WHEN_FULL");
}

// An elastic pool (pool_options::max_threads). Growth and retirement are observed through
// thread_count() and the calls themselves (how many run at once, on which threads), never
// through how long something took.
namespace {

smartasync::pool_options elastic(std::size_t min, std::size_t max,
                                 std::chrono::milliseconds keep_alive = std::chrono::hours(1)) {
  smartasync::pool_options options;
  options.threads = min;
  options.max_threads = max;
  options.grow_after = std::chrono::microseconds(200);
  options.keep_alive = keep_alive;
  return options;
}

// Runs `count` calls that each wait until all of them run at once: only a pool that grew to
// `count` workers can finish them (a pool that does not grow hangs, and fails on the test's
// timeout). Returns the distinct threads they ran on.
std::size_t run_all_at_once(smartasync::blocking_pool& pool, std::size_t count) {
  std::latch all_running{static_cast<std::ptrdiff_t>(count)};
  std::mutex mutex;
  std::vector<std::thread::id> ids;
  std::vector<std::future<void>> calls;
  for (std::size_t i = 0; i < count; ++i)
    calls.push_back(smartasync::async_offload(pool, [&] {
      {
        std::lock_guard lock(mutex);
        ids.push_back(std::this_thread::get_id());
      }
      all_running.arrive_and_wait();
    }, asio::use_future));
  for (auto& call : calls)
    call.get();
  std::sort(ids.begin(), ids.end());
  return static_cast<std::size_t>(std::unique(ids.begin(), ids.end()) - ids.begin());
}

void wait_for_thread_count(const smartasync::blocking_pool& pool, std::size_t count) {
  while (pool.thread_count() != count)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

} // namespace

TEST_CASE("an elastic pool needs max_threads of at least threads", "[blocking_pool][elastic]") {
  CHECK_THROWS_AS(smartasync::blocking_pool(elastic(4, 3)), std::invalid_argument);
  smartasync::blocking_pool pool{elastic(2, 8)};
  CHECK(pool.thread_count() == 2);
  const auto stats = pool.stats();
  CHECK(stats.min_threads == 2);
  CHECK(stats.max_threads == 8);
  CHECK(fmt::format("{}", stats).starts_with("threads=2 (2..8, added=0 retired=0) capacity="));
  smartasync::blocking_pool fixed{3};
  CHECK(fmt::format("{}", fixed.stats()).starts_with("threads=3 capacity="));
}

TEST_CASE("an elastic pool adds workers while every worker is busy and work waits",
          "[blocking_pool][elastic]") {
  smartasync::blocking_pool pool{elastic(1, 4)};
  CHECK(pool.thread_count() == 1);
  CHECK(run_all_at_once(pool, 4) == 4);
  CHECK(pool.thread_count() == 4);
  CHECK(pool.stats().threads_added == 3);

  // Never beyond max_threads, however much waits.
  std::atomic<int> now{0}, peak{0};
  std::vector<std::future<void>> calls;
  for (int i = 0; i < 64; ++i)
    calls.push_back(smartasync::async_offload(pool, [&] {
      const int n = ++now;
      int p = peak.load();
      while (n > p && !peak.compare_exchange_weak(p, n)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      --now;
    }, asio::use_future));
  for (auto& call : calls)
    call.get();
  CHECK(peak <= 4);
  CHECK(pool.thread_count() == 4);
  CHECK(pool.stats().threads_added == 3);
}

TEST_CASE("a burst into an elastic pool wakes its idle workers before it grows",
          "[blocking_pool][elastic]") {
  // Three idle workers take a burst of three without a new thread; a fourth call needs one.
  smartasync::blocking_pool pool{elastic(3, 8)};
  CHECK(run_all_at_once(pool, 3) == 3);
  CHECK(pool.stats().threads_added == 0);
  CHECK(run_all_at_once(pool, 4) == 4);
  CHECK(pool.thread_count() == 4);
  CHECK(pool.stats().threads_added == 1);
}

TEST_CASE("idle workers of an elastic pool retire after the keep-alive, down to the minimum",
          "[blocking_pool][elastic]") {
  smartasync::blocking_pool pool{elastic(2, 5, std::chrono::milliseconds(20))};
  CHECK(run_all_at_once(pool, 5) == 5);
  wait_for_thread_count(pool, 2);
  CHECK(pool.stats().threads_retired == 3);
  // Five keep-alives later it is still at its minimum.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(pool.thread_count() == 2);
  // And it grows again, into the slots the retired workers left.
  CHECK(run_all_at_once(pool, 4) == 4);
  CHECK(pool.stats().threads_added == 5);
  CHECK(pool.metrics().counts.completed == 9);
}

TEST_CASE("an elastic pool keeps its queue bound", "[blocking_pool][elastic]") {
  auto options = elastic(1, 2);
  options.queue_capacity = 2;
  options.when_full = smartasync::full_policy::reject;
  smartasync::blocking_pool pool{options};
  gate release;
  auto first = smartasync::async_offload(pool, [&] { release.wait(); }, asio::use_future);
  auto second = smartasync::async_offload(pool, [&] { release.wait(); }, asio::use_future);
  while (pool.stats().running < 2) // the second runs once the pool has grown
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto a = smartasync::async_offload(pool, [] { return 1; }, asio::use_future);
  auto b = smartasync::async_offload(pool, [] { return 2; }, asio::use_future);
  auto c = smartasync::async_offload(pool, [] { return 3; }, asio::use_future);
  CHECK(test_support::code_thrown_by([&] { c.get(); }) == smartasync::error::queue_full);
  CHECK(pool.thread_count() == 2);
  release.open();
  first.get();
  second.get();
  CHECK(a.get() + b.get() == 3);
}

TEST_CASE("shutting down an elastic pool while it grows settles every operation once",
          "[blocking_pool][elastic][shutdown]") {
  for (int round = 0; round < 10; ++round) {
    auto options = elastic(1, 8, std::chrono::milliseconds(1));
    options.grow_after = std::chrono::microseconds(0);
    smartasync::blocking_pool pool{options};
    std::atomic<int> ran{0};
    std::vector<std::future<void>> calls;
    for (int i = 0; i < 100; ++i)
      calls.push_back(smartasync::async_offload(pool, [&] {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        ++ran;
      }, asio::use_future));
    pool.shutdown(round % 2 ? smartasync::shutdown_mode::cancel : smartasync::shutdown_mode::drain);
    int completed = 0, aborted = 0;
    for (auto& call : calls) {
      const auto code = test_support::code_thrown_by([&] { call.get(); });
      if (!code)
        ++completed;
      else if (code == asio::error::operation_aborted)
        ++aborted;
    }
    CHECK(completed + aborted == 100);
    CHECK(completed == ran.load());
    if (round % 2 == 0)
      CHECK(completed == 100);
    const auto stats = pool.stats();
    CHECK(stats.threads_added - stats.threads_retired == stats.threads - 1);
  }
}

TEST_CASE("on_thread_start runs once on each worker before its first call, grown ones too",
          "[blocking_pool][elastic]") {
  std::mutex mutex;
  std::set<std::thread::id> started;
  int starts = 0;
  auto options = elastic(1, 3);
  options.on_thread_start = [&] {
    std::lock_guard lock(mutex);
    started.insert(std::this_thread::get_id());
    ++starts;
  };
  smartasync::blocking_pool pool{options};
  std::latch all_running{3};
  std::vector<std::future<bool>> calls;
  for (int i = 0; i < 3; ++i)
    calls.push_back(smartasync::async_offload(pool, [&] {
      bool known;
      {
        std::lock_guard lock(mutex);
        known = started.count(std::this_thread::get_id()) == 1;
      }
      all_running.arrive_and_wait();
      return known;
    }, asio::use_future));
  for (auto& call : calls)
    CHECK(call.get()); // the worker's hook ran before the call
  std::lock_guard lock(mutex);
  CHECK(starts == 3);
  CHECK(started.size() == 3);
}

#if defined(__linux__)
TEST_CASE("a pool's threads are named for what they are", "[blocking_pool][elastic]") {
  using test_support::eventually_threads_named;
  using test_support::threads_named;
  const int growers = threads_named("sa.pool-grower"), watchers = threads_named("sa.pool-watcher");
  {
    smartasync::blocking_pool pool{elastic(1, 2)};
    CHECK(eventually_threads_named("sa.pool-grower", growers + 1));
    CHECK(threads_named("sa.pool-watcher") == watchers); // not before the first call
    auto name = smartasync::async_offload(pool, [] { return test_support::this_thread_name(); },
                                          asio::use_future);
    CHECK(name.get() == "sa.pool-worker");
    // The watcher of slow calls and ignored stops starts with the first call.
    CHECK(eventually_threads_named("sa.pool-watcher", watchers + 1));
  }
  // Joined with the pool.
  CHECK(threads_named("sa.pool-grower") == growers);
  CHECK(threads_named("sa.pool-watcher") == watchers);
}

TEST_CASE("a name given in on_thread_start replaces the worker's", "[blocking_pool]") {
  smartasync::pool_options options;
  options.threads = 1;
  options.on_thread_start = [] { pthread_setname_np(pthread_self(), "indexer"); };
  smartasync::blocking_pool pool{options};
  CHECK(smartasync::async_offload(pool, [] { return test_support::this_thread_name(); },
                                  asio::use_future)
            .get() == "indexer");
}
#endif

TEST_CASE("a thread blocked for space returns once a draining shutdown has run its call",
          "[blocking_pool][shutdown]") {
  using namespace std::chrono_literals;
  smartasync::blocking_pool pool{1, 1}; // full_policy::wait
  gate started, release;
  auto ignore = [](std::exception_ptr) {};
  smartasync::async_offload(pool, [&] { started.open(); release.wait(); }, ignore);
  started.wait();
  smartasync::async_offload(pool, [] {}, ignore); // the queue is full now
  std::atomic<bool> third_ran{false};
  std::promise<void> submitted;
  std::thread submitter([&] {
    smartasync::async_offload(pool, [&] { third_ran = true; }, ignore); // blocks for space
    submitted.set_value();
  });
  while (pool.stats().blocked_submitters == 0)
    std::this_thread::yield();
  std::thread closer([&] { pool.shutdown(smartasync::shutdown_mode::drain); });
  while (!pool.stopped())
    std::this_thread::yield();
  release.open();
  closer.join(); // drained: every accepted call, the blocked one included, has run
  CHECK(third_ran);
  // A generous bound, only to turn a submitter blocked forever into a failure.
  REQUIRE(submitted.get_future().wait_for(30s) == std::future_status::ready);
  submitter.join();
}

namespace {

// Sets the repeat interval of rate-limited reports for a test, and restores it.
struct repeat_interval_for_test {
  explicit repeat_interval_for_test(std::chrono::steady_clock::duration interval)
      : previous(smartasync::set_report_repeat_interval(interval)) {}
  ~repeat_interval_for_test() { smartasync::set_report_repeat_interval(previous); }
  repeat_interval_for_test(const repeat_interval_for_test&) = delete;
  repeat_interval_for_test& operator=(const repeat_interval_for_test&) = delete;
  std::chrono::steady_clock::duration previous;
};

std::vector<smartasync::diagnostic> slow_call_reports(test_support::diagnostics_capture& capture) {
  auto all = capture.reports();
  std::erase_if(all, [](const smartasync::diagnostic& d) {
    return d.kind != smartasync::diagnostic_kind::slow_call;
  });
  return all;
}

// Waits until `pool` has counted `count` slow calls (test_support::eventually's bound).
bool wait_for_slow_calls(const smartasync::blocking_pool& pool, std::uint64_t count) {
  return test_support::eventually([&] { return pool.stats().slow_calls >= count; });
}

smartasync::pool_options slow_after(std::chrono::milliseconds threshold, std::size_t threads = 1) {
  smartasync::pool_options options;
  options.threads = threads;
  options.report_slow_call_after = threshold;
  return options;
}

} // namespace

TEST_CASE("a pool watches its workers' calls by default, with a one-minute threshold",
          "[blocking_pool][slow_call]") {
  CHECK(smartasync::pool_options{}.report_slow_call_after == std::chrono::minutes(1));
}

TEST_CASE("a call running past report_slow_call_after is reported once, naming the wrapper, "
          "where it was made, the worker thread and how long, and is counted",
          "[blocking_pool][slow_call]") {
  using namespace std::chrono_literals;
  test_support::diagnostics_capture capture;
  repeat_interval_for_test interval(1h);
  smartasync::blocking_pool pool{slow_after(20ms)};
  gate started, release;
  std::thread::id worker;
  const auto created_line = static_cast<std::uint_least32_t>(__LINE__ + 1);
  auto export_all = smartasync::smart_async(pool, [&] {
    worker = std::this_thread::get_id();
    started.open();
    release.wait();
    return 7;
  }, {.name = "nightly export"});
  auto result = export_all.async_call(asio::use_future);
  started.wait();
  REQUIRE(wait_for_slow_calls(pool, 1));
  release.open();
  CHECK(result.get() == 7);

  const auto reports = slow_call_reports(capture);
  REQUIRE(reports.size() == 1);
  const auto& d = reports[0];
  CHECK(d.name == "nightly export");
  CHECK(d.created_at.line() == created_line);
  CHECK(test_support::mentions(d.created_at.file_name(), "blocking_pool.test.cpp"));
  CHECK(d.where.line() == created_line);
  CHECK(d.thread == worker);
  CHECK(d.duration >= 20ms);
  CHECK(test_support::mentions(d.message, "'nightly export'"));
  CHECK(test_support::mentions(d.message, smartasync::detail::thread_text(worker)));
  CHECK(test_support::mentions(d.message, "report_slow_call_after: 20 ms"));
  CHECK(pool.stats().slow_calls == 1);
  CHECK(pool.metrics().counts.slow_calls == 1);
}

TEST_CASE("calls that return before report_slow_call_after are neither reported nor counted, "
          "while a slow one beside them is",
          "[blocking_pool][slow_call]") {
  using namespace std::chrono_literals;
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{slow_after(300ms, 2)};
  gate started, release;
  auto ignore = [](std::exception_ptr) {};
  smartasync::async_offload(pool, [&] { started.open(); release.wait(); }, ignore);
  started.wait();
  // Short calls on the other worker while the watcher times the slow one.
  for (int i = 0; i < 50; ++i)
    smartasync::async_offload(pool, [i] { return i; }, asio::use_future).get();
  REQUIRE(wait_for_slow_calls(pool, 1));
  release.open();
  pool.shutdown();
  CHECK(pool.stats().slow_calls == 1);
  CHECK(pool.stats().completed == 51);
  const auto reports = slow_call_reports(capture);
  REQUIRE(reports.size() == 1);
  // Without a wrapper, the report names the callable's type.
  CHECK(test_support::mentions(reports[0].message, "callable"));
}

TEST_CASE("slow calls of one wrapper are all counted but reported at most once per repeat "
          "interval, the next report saying how many went unreported",
          "[blocking_pool][slow_call]") {
  using namespace std::chrono_literals;
  test_support::diagnostics_capture capture;
  std::optional<repeat_interval_for_test> interval(std::in_place, 1h);
  smartasync::blocking_pool pool{slow_after(5ms)};
  auto stuck = smartasync::smart_async(pool, [](gate* g) { g->wait(); }, {.name = "stuck"});
  for (std::uint64_t i = 1; i <= 3; ++i) {
    gate release;
    auto done = stuck.async_call(&release, asio::use_future);
    REQUIRE(wait_for_slow_calls(pool, i));
    release.open();
    done.get();
  }
  CHECK(slow_call_reports(capture).size() == 1);
  interval.reset();
  repeat_interval_for_test every_time(0s);
  gate release;
  auto done = stuck.async_call(&release, asio::use_future);
  REQUIRE(wait_for_slow_calls(pool, 4));
  release.open();
  done.get();
  const auto reports = slow_call_reports(capture);
  REQUIRE(reports.size() == 2);
  CHECK(test_support::mentions(reports[1].message, "2 more since the last report"));
  CHECK(pool.stats().slow_calls == 4);
}

TEST_CASE("a pool whose slow-call threshold is zero watches nothing", "[blocking_pool][slow_call]") {
  using namespace std::chrono_literals;
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{slow_after(0ms)};
  smartasync::async_offload(pool, [] { std::this_thread::sleep_for(5ms); }, asio::use_future).get();
  pool.shutdown();
  CHECK(pool.stats().slow_calls == 0);
  CHECK(slow_call_reports(capture).empty());
}
