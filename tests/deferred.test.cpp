// Test that the header is self-contained.
#include <smartasync/deferred.hpp>

#include "common/test_support.hpp"

#include <smartasync/offload.hpp>
#include <smartasync/smart_async.hpp>
#include <smartasync/timeout.hpp>

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(async_result.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)
#include "common/catch.hpp"

#include <atomic>
#include <chrono>
#include <exception>
#include <type_traits>

using namespace std::chrono_literals;

static_assert(std::is_same_v<std::remove_cvref_t<decltype(smartasync::deferred)>,
                             smartasync::deferred_t>);
static_assert(asio::completion_token_for<smartasync::deferred_t, void(std::exception_ptr, int)>,
              "smartasync::deferred is a completion token on this Asio");

TEST_CASE("an offload given smartasync::deferred starts only when launched, on every Asio",
          "[deferred]") {
  smartasync::blocking_pool pool{1};
  std::atomic<int> runs{0};
  auto op = smartasync::async_offload(pool, [&] { return ++runs; }, smartasync::deferred);
  CHECK(pool.stats().submitted == 0);
  // use_awaitable launches a deferred operation on every Asio (co_await alone needs 1.28).
  CHECK(test_support::run([&]() -> asio::awaitable<int> {
          co_return co_await std::move(op)(asio::use_awaitable);
        }()) == 1);
  CHECK(runs == 1);
  CHECK(pool.stats().submitted == 1);
}

TEST_CASE("with_timeout takes a wrapper's deferred async form", "[deferred][timeout]") {
  smartasync::blocking_pool pool{1};
  auto twice = smartasync::smart_async(pool, [](int x) { return 2 * x; });
  CHECK(test_support::run([&]() -> asio::awaitable<int> {
          co_return co_await smartasync::with_timeout(twice.async_call(21, smartasync::deferred), 10s);
        }()) == 42);
}

#if SMARTASYNC_ASIO_VERSION >= 102800
// Asio 1.22 has no await_transform for a deferred operation; 1.26 (Boost 1.81) has one that
// does not compile for a void(std::exception_ptr, T) completion; 1.28 (Boost 1.83) on do.
TEST_CASE("a coroutine awaits a deferred offload directly", "[deferred]") {
  smartasync::blocking_pool pool{1};
  CHECK(test_support::run([&]() -> asio::awaitable<int> {
          co_return co_await smartasync::async_offload(pool, [] { return 7; },
                                                       smartasync::deferred);
        }()) == 7);
}
#endif
