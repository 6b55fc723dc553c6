// Test that the header is self-contained.
#include "smartasync/retry.hpp"

#include "common/test_support.hpp"

#include "common/catch.hpp"

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)

#include <chrono>
#include <new>
#include <optional>
#include <random>
#include <stdexcept>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using test_support::code_of;
using test_support::run;
using duration = smartasync::retry_policy::duration;

namespace {

// Marked transient the documented way: retry() retries it without a predicate.
struct transient : smartasync::transient_error {
  using smartasync::transient_error::transient_error;
};
struct fatal : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct throttled : smartasync::transient_error {
  duration retry_after;
  explicit throttled(duration d) : smartasync::transient_error("throttled"), retry_after(d) {}
};

std::optional<duration> retry_after_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const throttled& t) {
    return t.retry_after;
  } catch (...) {
    return std::nullopt;
  }
}

template <typename Exception>
bool counts_as_transient(Exception e) {
  return smartasync::is_transient(std::make_exception_ptr(std::move(e)));
}

struct retry_log {
  std::vector<std::size_t> attempts;
  std::vector<duration> delays;
};

smartasync::retry_policy small_policy(retry_log& log) {
  smartasync::retry_policy policy;
  policy.max_attempts = 5;
  policy.base_delay = 1ms;
  policy.max_delay = 4ms;
  policy.factor = 2.0;
  policy.on_retry = [&log](std::size_t attempt, duration delay, std::exception_ptr e) {
    CHECK(e != nullptr);
    log.attempts.push_back(attempt);
    log.delays.push_back(delay);
  };
  return policy;
}

} // namespace

TEST_CASE("retry returns the first success", "[retry]") {
  retry_log log;
  int calls = 0;
  std::minstd_rand engine{42};
  auto body = [&]() -> asio::awaitable<int> {
    co_return co_await smartasync::retry(
        small_policy(log),
        [&]() -> asio::awaitable<int> {
          if (++calls < 3)
            throw transient("try again");
          co_return calls;
        },
        engine);
  };
  CHECK(run(body()) == 3);
  CHECK(calls == 3);
  CHECK(log.attempts == std::vector<std::size_t>{1, 2});
}

TEST_CASE("retry gives up after max_attempts and rethrows the last error", "[retry]") {
  retry_log log;
  int calls = 0;
  auto body = [&]() -> asio::awaitable<void> {
    co_await smartasync::retry(small_policy(log), [&]() -> asio::awaitable<void> {
      ++calls;
      throw transient("attempt " + std::to_string(calls));
      co_return;
    });
  };
  CHECK_THROWS_WITH(run(body()), "attempt 5");
  CHECK(calls == 5);
  CHECK(log.attempts == std::vector<std::size_t>{1, 2, 3, 4});
}

TEST_CASE("retry delays are full-jitter exponential and bounded by the cap", "[retry]") {
  // Many seeded runs: every delay lies in [0, min(cap, base * 2^(n-1))], and the spread shows
  // jitter is applied (not always the ceiling).
  bool saw_below_ceiling = false;
  for (unsigned seed = 1; seed <= 20; ++seed) {
    retry_log log;
    std::minstd_rand engine{seed};
    auto policy = small_policy(log);
    policy.max_attempts = 6;
    auto body = [&]() -> asio::awaitable<void> {
      co_await smartasync::retry(
          policy, []() -> asio::awaitable<void> { throw transient("no"); co_return; }, engine);
    };
    CHECK_THROWS_AS(run(body()), transient);
    REQUIRE(log.delays.size() == 5);
    const duration ceilings[] = {1ms, 2ms, 4ms, 4ms, 4ms};
    for (std::size_t i = 0; i < 5; ++i) {
      CHECK(log.delays[i] >= duration::zero());
      CHECK(log.delays[i] <= ceilings[i]);
      if (log.delays[i] < ceilings[i])
        saw_below_ceiling = true;
    }
  }
  CHECK(saw_below_ceiling);
}

TEST_CASE("retry is deterministic for a given seed", "[retry]") {
  auto delays_for = [](unsigned seed) {
    retry_log log;
    std::minstd_rand engine{seed};
    auto body = [&]() -> asio::awaitable<void> {
      co_await smartasync::retry(
          small_policy(log), []() -> asio::awaitable<void> { throw transient("no"); co_return; },
          engine);
    };
    CHECK_THROWS(run(body()));
    return log.delays;
  };
  CHECK(delays_for(7) == delays_for(7));
}

TEST_CASE("retry does not retry what the predicate rejects", "[retry]") {
  retry_log log;
  int calls = 0;
  auto policy = small_policy(log);
  policy.retryable = [](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const transient&) {
      return true;
    } catch (...) {
      return false;
    }
  };
  auto body = [&]() -> asio::awaitable<void> {
    co_await smartasync::retry(policy, [&]() -> asio::awaitable<void> {
      if (++calls == 1)
        throw transient("first");
      throw fatal("second");
      co_return;
    });
  };
  CHECK_THROWS_AS(run(body()), fatal);
  CHECK(calls == 2);
  CHECK(log.attempts.size() == 1);
}

TEST_CASE("a server-provided delay overrides the computed one", "[retry]") {
  retry_log log;
  int calls = 0;
  auto policy = small_policy(log);
  policy.server_delay = retry_after_of;
  auto body = [&]() -> asio::awaitable<int> {
    co_return co_await smartasync::retry(policy, [&]() -> asio::awaitable<int> {
      ++calls;
      if (calls == 1)
        throw throttled(3ms); // within max_delay (4 ms), above the computed ceiling (1 ms)
      if (calls == 2)
        throw transient("plain");
      co_return calls;
    });
  };
  CHECK(run(body()) == 3);
  REQUIRE(log.delays.size() == 2);
  CHECK(log.delays[0] == 3ms);
  CHECK(log.delays[1] <= 2ms);
}

TEST_CASE("a server-provided delay is capped by max_delay", "[retry]") {
  // A server (or a proxy in front of it) answering "Retry-After: 86400" must not park the
  // client for a day.
  retry_log log;
  auto policy = small_policy(log);
  policy.max_attempts = 2;
  policy.server_delay = retry_after_of;
  auto body = [&]() -> asio::awaitable<void> {
    co_await smartasync::retry(policy, []() -> asio::awaitable<void> {
      throw throttled(1h);
      co_return;
    });
  };
  CHECK_THROWS_AS(run(body()), throttled);
  REQUIRE(log.delays.size() == 1);
  CHECK(log.delays[0] == 4ms); // max_delay
}

TEST_CASE("max_server_delay lets a server ask for more than max_delay, up to it", "[retry]") {
  retry_log log;
  auto policy = small_policy(log);
  policy.max_attempts = 3;
  policy.max_server_delay = 6ms;
  policy.server_delay = retry_after_of;
  int calls = 0;
  auto body = [&]() -> asio::awaitable<void> {
    co_await smartasync::retry(policy, [&]() -> asio::awaitable<void> {
      throw throttled(++calls == 1 ? 5ms : 1h);
      co_return;
    });
  };
  CHECK_THROWS_AS(run(body()), throttled);
  CHECK(log.delays == std::vector<duration>{5ms, 6ms});
}

TEST_CASE("by default retry fails at once on what is not transient", "[retry]") {
  retry_log log;
  int calls = 0;
  auto fails_with = [&](auto exception) {
    calls = 0;
    log = {};
    auto body = [&]() -> asio::awaitable<void> {
      co_await smartasync::retry(small_policy(log), [&]() -> asio::awaitable<void> {
        ++calls;
        throw exception;
        co_return;
      });
    };
    CHECK_THROWS_AS(run(body()), decltype(exception));
  };
  SECTION("a logic error (a bug: the same call fails the same way)") {
    fails_with(std::invalid_argument("bad argument"));
  }
  SECTION("an exception the library cannot know") {
    fails_with(std::runtime_error("unknown"));
  }
  SECTION("an error code that is not transient") {
    fails_with(std::system_error(std::make_error_code(std::errc::permission_denied)));
  }
  CHECK(calls == 1);
  CHECK(log.attempts.empty());
}

TEST_CASE("by default retry retries what is_transient calls transient", "[retry]") {
  retry_log log;
  int calls = 0;
  auto body = [&]() -> asio::awaitable<int> {
    co_return co_await smartasync::retry(small_policy(log), [&]() -> asio::awaitable<int> {
      switch (++calls) {
      case 1:
        throw smartasync::system_error(smartasync::error::queue_full);
      case 2:
        throw std::system_error(std::make_error_code(std::errc::connection_refused));
      case 3:
        throw transient("marked");
      default:
        co_return calls;
      }
    });
  };
  CHECK(run(body()) == 4);
  CHECK(log.attempts == std::vector<std::size_t>{1, 2, 3});
}

TEST_CASE("is_transient: the default classifier", "[retry]") {
  using smartasync::error;
  CHECK(counts_as_transient(transient("marked")));
  CHECK(counts_as_transient(smartasync::transient_error("marked")));
  CHECK(counts_as_transient(smartasync::system_error(error::queue_full)));
  CHECK(counts_as_transient(smartasync::system_error(error::deadline_expired)));
  CHECK(counts_as_transient(smartasync::system_error(error::timeout)));
  CHECK(counts_as_transient(std::system_error(std::make_error_code(std::errc::connection_reset))));
  CHECK(counts_as_transient(std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again))));
  CHECK(counts_as_transient(smartasync::system_error(asio::error::connection_refused)));
  CHECK(counts_as_transient(smartasync::system_error(asio::error::timed_out)));

  CHECK_FALSE(counts_as_transient(smartasync::system_error(asio::error::operation_aborted)));
  CHECK_FALSE(counts_as_transient(smartasync::system_error(asio::error::access_denied)));
  CHECK_FALSE(counts_as_transient(smartasync::system_error(asio::error::eof)));
  CHECK_FALSE(counts_as_transient(smartasync::system_error(error::pool_stopped)));
  CHECK_FALSE(counts_as_transient(smartasync::system_error(error::blocking_call_on_loop)));
  CHECK_FALSE(counts_as_transient(std::system_error(std::make_error_code(std::errc::invalid_argument))));
  CHECK_FALSE(counts_as_transient(std::logic_error("bug")));
  CHECK_FALSE(counts_as_transient(std::out_of_range("bug")));
  CHECK_FALSE(counts_as_transient(std::runtime_error("unknown")));
  CHECK_FALSE(counts_as_transient(std::bad_alloc()));
  CHECK_FALSE(counts_as_transient(42));
  CHECK_FALSE(smartasync::is_transient(nullptr));
}

TEST_CASE("cancellation is never retried", "[retry][cancellation]") {
  retry_log log;
  int calls = 0;
  auto body = [&]() -> asio::awaitable<void> {
    co_await smartasync::retry(small_policy(log), [&]() -> asio::awaitable<void> {
      ++calls;
      throw smartasync::system_error(asio::error::operation_aborted);
      co_return;
    });
  };
  CHECK(test_support::code_thrown_by([&] { run(body()); }) == asio::error::operation_aborted);
  CHECK(calls == 1);
  CHECK(log.attempts.empty());
}

TEST_CASE("cancelling the caller during a backoff delay stops retrying", "[retry][cancellation]") {
  asio::io_context io;
  retry_log log;
  int calls = 0;
  auto policy = small_policy(log);
  policy.base_delay = 1h;
  policy.max_delay = 1h;
  policy.server_delay = [](std::exception_ptr) -> std::optional<duration> { return 1h; };
  auto body = [&]() -> asio::awaitable<void> {
    co_await smartasync::retry(policy, [&]() -> asio::awaitable<void> {
      ++calls;
      throw transient("no");
      co_return;
    });
  };
  const auto outcome = test_support::run_then_cancel(io, body());
  CHECK(code_of(outcome) == asio::error::operation_aborted);
  CHECK(calls == 1);
}

TEST_CASE("retry rejects an impossible policy", "[retry][misuse]") {
  smartasync::retry_policy policy;
  policy.max_attempts = 0;
  auto body = [&]() -> asio::awaitable<int> {
    co_return co_await smartasync::retry(policy, []() -> asio::awaitable<int> { co_return 1; });
  };
  CHECK_THROWS_AS(run(body()), std::invalid_argument);
}

// Built with -Wall -Wextra -Werror: gcc's -Wmissing-field-initializers fired on every field left
// out of a designated initializer that had no default member initializer (the std::function
// callbacks), so the documented way to write a policy failed to compile in a -Werror project.
TEST_CASE("a retry_policy designated-initialises with any subset of its fields", "[retry]") {
  const smartasync::retry_policy only_attempts{.max_attempts = 5};
  const smartasync::retry_policy with_progress{
      .max_attempts = 2, .on_retry = [](std::size_t, auto, std::exception_ptr) {}};
  CHECK(only_attempts.max_attempts == 5);
  CHECK_FALSE(only_attempts.on_retry);
  CHECK(with_progress.on_retry);
  CHECK_FALSE(with_progress.retryable);
}
