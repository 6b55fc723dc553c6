// Test that the header is self-contained.
#include "smartasync/fan_out.hpp"

#include "common/test_support.hpp"

#include <smartasync/smart_async.hpp>

#include "common/catch.hpp"

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(this_coro.hpp)
#include SMARTASYNC_ASIO_HEADER(thread_pool.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)

#include <algorithm>
#include <chrono>
#include <list>
#include <utility>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using test_support::code_of;
using test_support::run;

namespace {

struct custom_error {
  int input;
};

// Counts operations in flight and remembers the most seen at once. The workers of one fan_out
// never run concurrently, so plain ints are enough; TSan checks that claim.
struct concurrency_probe {
  int in_flight = 0;
  int max_in_flight = 0;
  int started = 0;
  int aborted = 0;
  std::vector<int> start_order;

  // Sleeps `d`, counting itself as in flight meanwhile.
  asio::awaitable<void> track(int input, std::chrono::steady_clock::duration d) {
    ++started;
    start_order.push_back(input);
    max_in_flight = std::max(max_in_flight, ++in_flight);
    asio::steady_timer timer(co_await asio::this_coro::executor, d);
    try {
      co_await timer.async_wait(asio::use_awaitable);
    } catch (const smartasync::system_error& e) {
      --in_flight;
      if (e.code() == asio::error::operation_aborted)
        ++aborted;
      throw;
    }
    --in_flight;
  }
};

} // namespace

TEST_CASE("fan_out returns results in input order with at most K in flight", "[fan_out]") {
  concurrency_probe probe;
  const std::vector<int> inputs{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  auto body = [&]() -> asio::awaitable<std::vector<std::string>> {
    co_return co_await smartasync::fan_out(inputs, 3, [&](int x) -> asio::awaitable<std::string> {
      // Later inputs finish sooner, so completion order differs from input order.
      co_await probe.track(x, std::chrono::milliseconds(11 - x));
      co_return std::to_string(x * 10);
    });
  };
  const auto results = run(body());
  CHECK(results == std::vector<std::string>{"10", "20", "30", "40", "50", "60", "70", "80", "90",
                                            "100"});
  CHECK(probe.max_in_flight == 3);
  CHECK(probe.started == 10);
  // Inputs are started in order, as slots free up.
  CHECK(probe.start_order == inputs);
}

TEST_CASE("fan_out does not create all operations up front", "[fan_out]") {
  int created = 0;
  int finished = 0;
  int worst_backlog = 0;
  auto body = [&]() -> asio::awaitable<void> {
    co_await smartasync::fan_out(std::vector<int>(20, 0), 2, [&](int) -> asio::awaitable<void> {
      ++created;
      worst_backlog = std::max(worst_backlog, created - finished);
      asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
      co_await timer.async_wait(asio::use_awaitable);
      ++finished;
    });
  };
  run(body());
  CHECK(created == 20);
  CHECK(worst_backlog <= 2);
}

TEST_CASE("fan_out fail_fast cancels the rest and rethrows the first error", "[fan_out]") {
  concurrency_probe probe;
  std::vector<int> inputs(10);
  for (int i = 0; i < 10; ++i)
    inputs[i] = i;
  auto body = [&]() -> asio::awaitable<std::vector<int>> {
    co_return co_await smartasync::fan_out(inputs, 3, [&](int x) -> asio::awaitable<int> {
      if (x == 1) {
        co_await probe.track(x, 2ms);
        throw custom_error{x};
      }
      co_await probe.track(x, 1h); // only cancellation ends this
      co_return x;
    });
  };
  try {
    run(body());
    FAIL("no exception");
  } catch (const custom_error& e) {
    CHECK(e.input == 1);
  }
  // Inputs 0 and 2 were in flight and got cancelled; nothing after them started.
  CHECK(probe.started == 3);
  CHECK(probe.aborted == 2);
  CHECK(probe.in_flight == 0);
}

TEST_CASE("fail_fast stops a function that loops over operations at its next one", "[fan_out]") {
  // Input 1 loops over operations that take no cancellation (posts), like a worker that takes
  // page after page: the stop emitted when input 0 fails reaches none of them, so only the
  // cancelled state can end the loop, at its next co_await.
  constexpr int limit = 1000;
  int iterations = 0;
  std::vector<int> inputs{0, 1};
  auto body = [&]() -> asio::awaitable<void> {
    co_await smartasync::fan_out(inputs, 2, [&](int x) -> asio::awaitable<void> {
      const auto ex = co_await asio::this_coro::executor;
      if (x == 0) {
        co_await asio::post(ex, asio::use_awaitable);
        throw custom_error{x};
      }
      while (iterations < limit) {
        co_await asio::post(ex, asio::use_awaitable);
        ++iterations;
      }
    });
  };
  try {
    run(body());
    FAIL("no exception");
  } catch (const custom_error& e) {
    CHECK(e.input == 0);
  }
  CHECK(iterations < 5); // it ran to the limit when cancellation was not thrown
}

TEST_CASE("fan_out collect_all runs everything and reports each outcome", "[fan_out]") {
  // HACK(gcc 12): a braced-init-list temporary inside a co_await expression fails to compile
  // ("array used as initializer"), so these tests name their inputs first.
  auto body = []() -> asio::awaitable<std::vector<smartasync::outcome<int>>> {
    std::list<int> inputs{1, 2, 3, 4, 5};
    co_return co_await smartasync::fan_out(
        std::move(inputs), 2,
        [](int x) -> asio::awaitable<int> {
          if (x % 2 == 0)
            throw std::runtime_error("even " + std::to_string(x));
          co_return x * x;
        },
        smartasync::collect_all);
  };
  auto results = run(body());
  REQUIRE(results.size() == 5);
  CHECK(results[0].value() == 1);
  CHECK(results[2].value() == 9);
  CHECK(results[4].value() == 25);
  CHECK_FALSE(results[1]);
  CHECK_THROWS_WITH(results[1].value(), "even 2");
  CHECK_THROWS_WITH(std::rethrow_exception(results[3].error()), "even 4");
  CHECK(results[0].error() == nullptr);
}

TEST_CASE("fan_out reports progress after every input", "[fan_out]") {
  std::vector<std::pair<std::size_t, std::size_t>> calls;
  auto body = [&]() -> asio::awaitable<std::vector<smartasync::outcome<void>>> {
    std::vector<int> inputs{1, 2, 3, 4};
    co_return co_await smartasync::fan_out(
        inputs, 2,
        [](int x) -> asio::awaitable<void> {
          if (x == 3)
            throw std::runtime_error("three");
          co_return;
        },
        smartasync::collect_all,
        [&](std::size_t done, std::size_t total) { calls.emplace_back(done, total); });
  };
  auto results = run(body());
  CHECK(results[0].has_value());
  CHECK_FALSE(results[2].has_value());
  CHECK(calls == std::vector<std::pair<std::size_t, std::size_t>>{{1, 4}, {2, 4}, {3, 4}, {4, 4}});
}

TEST_CASE("an exception from on_progress stops the fan_out and reaches the caller",
          "[fan_out]") {
  // Both overloads: the callback is the caller's code, so its failure is the call's failure,
  // not one input's; the remaining inputs are not started, the in-flight ones are cancelled.
  for (bool fail_fast : {true, false}) {
    INFO("fail_fast: " << fail_fast);
    concurrency_probe probe;
    std::vector<int> inputs{1, 2, 3, 4, 5, 6};
    auto f = [&](int x) { return probe.track(x, x == 1 ? 1ms : 1h); };
    auto on_progress = [](std::size_t done, std::size_t) {
      if (done == 1)
        throw std::runtime_error("progress display broke");
    };
    std::string what;
    try {
      if (fail_fast)
        run(smartasync::fan_out(inputs, 2, f, smartasync::fail_fast, on_progress));
      else
        run(smartasync::fan_out(inputs, 2, f, smartasync::collect_all, on_progress));
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    CHECK(what == "progress display broke");
    CHECK(probe.started == 2);  // input 1 finished and its progress threw: nothing else began
    CHECK(probe.aborted == 1);  // input 2 (an hour long) was cancelled, not waited for
    CHECK(probe.in_flight == 0); // and nothing outlives the call
  }
}

TEST_CASE("fan_out handles empty input and rejects a zero limit", "[fan_out][misuse]") {
  auto body = []() -> asio::awaitable<std::vector<int>> {
    co_return co_await smartasync::fan_out(std::vector<int>{}, 4,
                                           [](int x) -> asio::awaitable<int> { co_return x; });
  };
  CHECK(run(body()).empty());
  auto identity = [](int x) -> asio::awaitable<int> { co_return x; };
  CHECK_THROWS_AS(smartasync::fan_out(std::vector<int>{1}, 0, identity), std::invalid_argument);
}

TEST_CASE("cancelling the caller cancels in-flight operations and starts no more",
          "[fan_out][cancellation]") {
  asio::io_context io;
  concurrency_probe probe;
  auto body = [&]() -> asio::awaitable<void> {
    std::vector<int> inputs{1, 2, 3, 4, 5};
    co_await smartasync::fan_out(inputs, 2,
                                 [&](int x) { return probe.track(x, 1h); });
  };
  const auto outcome = test_support::run_then_cancel(io, body());
  CHECK(code_of(outcome) == asio::error::operation_aborted);
  CHECK(probe.started == 2);
  CHECK(probe.aborted == 2);
}

TEST_CASE("fan_out serialises its workers on a multi-threaded executor", "[fan_out]") {
  asio::thread_pool pool(2);
  concurrency_probe probe; // plain ints: a data race here would be a TSan report
  auto body = [&]() -> asio::awaitable<std::vector<int>> {
    std::vector<int> inputs{1, 2, 3, 4, 5, 6};
    co_return co_await smartasync::fan_out(std::move(inputs), 3,
                                           [&](int x) -> asio::awaitable<int> {
                                             co_await probe.track(x, 1ms);
                                             co_return -x;
                                           });
  };
  auto future = asio::co_spawn(pool, body(), asio::use_future);
  CHECK(future.get() == std::vector<int>{-1, -2, -3, -4, -5, -6});
  pool.join();
  CHECK(probe.max_in_flight <= 3);
  CHECK(probe.started == 6);
}

TEST_CASE("fan_out leaves the caller's throw_if_cancelled setting as it was", "[fan_out]") {
  auto body = []() -> asio::awaitable<bool> {
    std::vector<int> inputs{1, 2};
    co_await smartasync::fan_out(inputs, 1, [](int x) -> asio::awaitable<int> { co_return x; });
    co_return co_await asio::this_coro::throw_if_cancelled();
  };
  CHECK(run(body()));
}

TEST_CASE("a smart_async wrapper passed to fan_out is awaited through its async form",
          "[fan_out][smart_async]") {
  smartasync::blocking_pool pool{2};
  auto square = smartasync::smart_async(pool, [](int x) {
    return std::pair{x * x, smartasync::this_thread::current_pool() != nullptr};
  });
  std::vector<int> inputs{1, 2, 3, 4};
  auto results = run(smartasync::fan_out(inputs, 2, square));
  REQUIRE(results.size() == 4);
  for (std::size_t i = 0; i < results.size(); ++i) {
    CHECK(results[i].first == inputs[i] * inputs[i]);
    CHECK(results[i].second); // ran on the pool, not inline on the loop
  }
}
