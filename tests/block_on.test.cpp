// Test that the header is self-contained.
#include "smartasync/block_on.hpp"

#include "common/test_support.hpp"
#include "common/thread_names.hpp"

#include <smartasync/offload.hpp>
#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(use_future.hpp)

#include "common/catch.hpp"

#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(strand.hpp)
#include SMARTASYNC_ASIO_HEADER(this_coro.hpp)
#include SMARTASYNC_ASIO_HEADER(thread_pool.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

using test_support::code_of;

struct custom_error {
  int code;
};

asio::awaitable<int> answer() { co_return 42; }

asio::awaitable<std::thread::id> which_thread() { co_return std::this_thread::get_id(); }

asio::awaitable<int> sleep_then(int value, std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::use_awaitable);
  co_return value;
}

// An io_context run by its own thread for the duration of a test.
struct running_context {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  ~running_context() {
    guard.reset();
    thread.join();
  }
};

// Collects diagnostics for one test and restores the previous handler afterwards.
struct diagnostics_capture {
  std::mutex mutex;
  std::vector<smartasync::diagnostic> seen;
  smartasync::diagnostics_handler previous = smartasync::set_diagnostics_handler(
      [this](const smartasync::diagnostic& d) {
        std::lock_guard lock(mutex);
        seen.push_back(d);
      });
  ~diagnostics_capture() { smartasync::set_diagnostics_handler(previous); }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return seen.size();
  }
};

// Runs `f` inside a handler of `io` (run by the calling thread) and returns what it threw.
template <typename F>
std::exception_ptr run_in_handler(asio::io_context& io, F f) {
  std::exception_ptr thrown;
  asio::post(io, [&] {
    try {
      f();
    } catch (...) {
      thrown = std::current_exception();
    }
  });
  io.run();
  io.restart();
  return thrown;
}


} // namespace

TEST_CASE("block_on returns the awaitable's value", "[block_on]") {
  static_assert(std::is_same_v<decltype(smartasync::block_on(answer())), int>);
  CHECK(smartasync::block_on(answer()) == 42);
  CHECK(smartasync::block_on(sleep_then(7, 1ms)) == 7);
}

TEST_CASE("block_on runs the awaitable on the background loop, not the caller", "[block_on]") {
  const auto ran_on = smartasync::block_on(which_thread());
  CHECK(ran_on != std::this_thread::get_id());
  // Same shared loop every time.
  CHECK(smartasync::block_on(which_thread()) == ran_on);
}

TEST_CASE("block_on supports void awaitables", "[block_on]") {
  bool ran = false;
  auto body = [&]() -> asio::awaitable<void> {
    ran = true;
    co_return;
  };
  smartasync::block_on(body());
  CHECK(ran);
}

TEST_CASE("block_on rethrows exceptions of any type", "[block_on]") {
  auto throws = []() -> asio::awaitable<int> {
    throw custom_error{17};
    co_return 0;
  };
  try {
    smartasync::block_on(throws());
    FAIL("block_on did not throw");
  } catch (const custom_error& e) {
    CHECK(e.code == 17);
  }
  auto throws_system = []() -> asio::awaitable<void> {
    throw smartasync::system_error(make_error_code(std::errc::permission_denied));
    co_return;
  };
  CHECK_THROWS_MATCHES(
      smartasync::block_on(throws_system()), smartasync::system_error,
      Catch::Matchers::Predicate<smartasync::system_error>([](const smartasync::system_error& e) {
        return e.code() == std::errc::permission_denied;
      }));
}

TEST_CASE("block_on is safe from many threads at once", "[block_on]") {
  constexpr int threads = 8;
  constexpr int calls = 25;
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < calls; ++i) {
        const int expected = t * 1000 + i;
        if (smartasync::block_on(sleep_then(expected, 0ms)) != expected)
          ++wrong;
      }
    });
  }
  for (auto& c : callers)
    c.join();
  CHECK(wrong == 0);
}

TEST_CASE("block_on runs on a caller-provided executor or context", "[block_on]") {
  running_context ctx;
  const auto loop_thread = ctx.thread.get_id();
  CHECK(smartasync::block_on(ctx.io.get_executor(), which_thread()) == loop_thread);
  CHECK(smartasync::block_on(ctx.io, which_thread()) == loop_thread);
  CHECK(smartasync::block_on(asio::make_strand(ctx.io), which_thread()) == loop_thread);
  asio::any_io_executor any = ctx.io.get_executor();
  CHECK(smartasync::block_on(any, which_thread()) == loop_thread);

  asio::thread_pool pool(1);
  CHECK(smartasync::block_on(pool, sleep_then(5, 0ms)) == 5);
  pool.join();
}

TEST_CASE("block_on on the loop it waits on throws deadlock instead of hanging",
          "[block_on][misuse]") {
  diagnostics_capture diagnostics;
  asio::io_context io;

  SECTION("io_context executor") {
    auto e = run_in_handler(io, [&] { smartasync::block_on(io.get_executor(), answer()); });
    CHECK(code_of(e) == smartasync::error::deadlock);
  }
  SECTION("the context itself") {
    auto e = run_in_handler(io, [&] { smartasync::block_on(io, answer()); });
    CHECK(code_of(e) == smartasync::error::deadlock);
  }
  SECTION("a strand on it, from outside the strand") {
    auto strand = asio::make_strand(io);
    auto e = run_in_handler(io, [&] { smartasync::block_on(strand, answer()); });
    CHECK(code_of(e) == smartasync::error::deadlock);
  }
  SECTION("any_io_executor wrapping it") {
    asio::any_io_executor any = asio::make_strand(io);
    auto e = run_in_handler(io, [&] { smartasync::block_on(any, answer()); });
    CHECK(code_of(e) == smartasync::error::deadlock);
  }
  SECTION("a thread_pool from one of its threads") {
    asio::thread_pool pool(1);
    // The code, not the exception_ptr, crosses threads: libstdc++'s exception_ptr reference
    // count is not instrumented, so TSan would flag the exception's release as a race.
    std::promise<smartasync::error_code> thrown;
    asio::post(pool, [&] {
      try {
        smartasync::block_on(pool, answer());
        thrown.set_value({});
      } catch (...) {
        thrown.set_value(code_of(std::current_exception()));
      }
    });
    CHECK(thrown.get_future().get() == smartasync::error::deadlock);
    pool.join();
  }
  SECTION("the background loop, from a coroutine block_on started") {
    auto nested = []() -> asio::awaitable<smartasync::error_code> {
      try {
        smartasync::block_on(answer());
      } catch (const smartasync::system_error& e) {
        co_return e.code();
      }
      co_return smartasync::error_code{};
    };
    CHECK(smartasync::block_on(nested()) == smartasync::error::deadlock);
  }
  // A deadlock is an error, not a report.
  CHECK(diagnostics.count() == 0);
}

TEST_CASE("the deadlock message says what happened and what to do", "[block_on][misuse]") {
  asio::io_context io;
  std::string message;
  run_in_handler(io, [&] {
    try {
      smartasync::block_on(io, answer());
    } catch (const smartasync::system_error& e) {
      message = e.what();
    }
  });
  CHECK_THAT(message, test_support::contains_substring("runs the execution context"));
  CHECK_THAT(message, test_support::contains_substring("co_await"));
  CHECK_THAT(message, test_support::contains_substring("block_on.test.cpp"));
}

TEST_CASE("block_on from another loop's thread works and is reported once per call site",
          "[block_on][misuse]") {
  diagnostics_capture diagnostics;
  asio::io_context other;
  std::vector<int> results;
  auto e = run_in_handler(other, [&] {
    for (int i = 0; i < 3; ++i)
      results.push_back(smartasync::block_on(answer())); // one call site, three calls
  });
  CHECK_FALSE(e);
  CHECK(results == std::vector<int>{42, 42, 42});
  REQUIRE(diagnostics.count() == 1);
  const auto& d = diagnostics.seen.front();
  CHECK(d.kind == smartasync::diagnostic_kind::block_on_from_loop);
  CHECK(d.thread == std::this_thread::get_id());
  CHECK_THAT(std::string(d.where.file_name()),
             test_support::contains_substring("block_on.test.cpp"));
  CHECK_THAT(d.message, test_support::contains_substring("co_await"));

  // Off-loop calls are not reported.
  CHECK(smartasync::block_on(answer()) == 42);
  CHECK(diagnostics.count() == 1);
}

TEST_CASE("block_on wakes with operation_aborted when the context dies first", "[block_on]") {
  auto io = std::make_unique<asio::io_context>();
  std::atomic<bool> started{false};
  auto forever = [&]() -> asio::awaitable<int> {
    started = true;
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
    co_await timer.async_wait(asio::use_awaitable);
    co_return 1;
  };
  // The guard keeps run() from returning before block_on has spawned the coroutine.
  auto guard = std::make_optional(asio::make_work_guard(*io));
  std::thread runner([&] { io->run(); });
  std::thread killer([&] {
    while (!started)
      std::this_thread::yield();
    io->stop();
    runner.join();
    guard.reset();
    io.reset(); // destroys the suspended coroutine and its completion handler
  });
  smartasync::error_code code;
  try {
    smartasync::block_on(io->get_executor(), forever());
  } catch (const smartasync::system_error& e) {
    code = e.code();
  }
  killer.join();
  CHECK(code == asio::error::operation_aborted);
}

TEST_CASE("block_on inside a pool's only worker, on work offloaded to that pool, completes",
          "[block_on][blocking_pool]") {
  // One worker: it blocks in block_on, and the awaitable's offload is queued behind it. The
  // waiting worker runs that queued call itself instead of deadlocking.
  smartasync::blocking_pool pool{1};
  auto inner_thread = [] { return std::this_thread::get_id(); };
  auto outer = smartasync::async_offload(pool, [&] {
    const auto outer_id = std::this_thread::get_id();
    const auto inner_id = smartasync::block_on(
        [&]() -> asio::awaitable<std::thread::id> {
          // On the background loop: this offload is queued, not nested.
          co_return co_await smartasync::async_offload(pool, inner_thread);
        }());
    return std::pair{outer_id, inner_id};
  }, asio::use_future);
  const auto [outer_id, inner_id] = outer.get();
  CHECK(inner_id == outer_id); // the blocked worker ran it
  const auto stats = pool.stats();
  CHECK(stats.submitted == 2);
  CHECK(stats.completed == 2);
}

#if defined(__linux__)
TEST_CASE("the background loop's thread is named for what it is", "[block_on]") {
  std::promise<std::string> name;
  asio::post(smartasync::background_executor(),
             [&] { name.set_value(test_support::this_thread_name()); });
  CHECK(name.get_future().get() == "sa.background");
}
#endif
