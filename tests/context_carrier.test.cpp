// Test that the header is self-contained.
#include "smartasync/context_carrier.hpp"

#include "common/test_support.hpp"

#include "smartasync/offload.hpp"

#include "common/catch.hpp"

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)

#include <algorithm>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

// A request id kept in a thread_local, as logging libraries keep their context.
struct request_id {
  using value_type = std::string;
  static inline thread_local std::string current;
  static value_type capture() noexcept { return current; }
  static value_type exchange(value_type v) noexcept { return std::exchange(current, std::move(v)); }
};

struct tenant {
  using value_type = int;
  static inline thread_local int current = 0;
  static value_type capture() noexcept { return current; }
  static value_type exchange(value_type v) noexcept { return std::exchange(current, v); }
};

static_assert(smartasync::context_carrier<request_id>);
static_assert(!smartasync::context_carrier<int>);

} // namespace

TEST_CASE("without a registered carrier nothing is carried") {
  smartasync::blocking_pool pool{1, 16};
  request_id::current = "main";
  const auto seen = smartasync::async_offload(pool, [] { return request_id::current; },
                                              asio::use_future).get();
  CHECK(seen.empty());
  request_id::current.clear();
}

TEST_CASE("a registered carrier is captured at submission, visible in the call, restored after") {
  smartasync::blocking_pool pool{1, 16};
  auto carried = smartasync::carry_context<request_id>();
  request_id::current = "req-7";
  std::thread::id worker;
  const auto seen = smartasync::async_offload(pool, [&] {
    worker = std::this_thread::get_id();
    auto value = request_id::current;
    request_id::current = "changed by the call";
    return value;
  }, asio::use_future).get();
  CHECK(seen == "req-7");
  // The worker is back to its own (empty) context; the submitter's is untouched.
  request_id::current.clear();
  const auto [later_thread, later_seen] = smartasync::async_offload(pool, [] {
    return std::pair{std::this_thread::get_id(), request_id::current};
  }, asio::use_future).get();
  CHECK(later_thread == worker);
  CHECK(later_seen.empty());
}

TEST_CASE("several carriers compose, and unregistering stops carrying") {
  smartasync::blocking_pool pool{1, 16};
  auto carried_id = smartasync::carry_context<request_id>();
  auto carried_tenant = smartasync::carry_context<tenant>();
  request_id::current = "req-1";
  tenant::current = 42;
  auto both = smartasync::async_offload(pool, [] { return std::pair{request_id::current, tenant::current}; },
                                        asio::use_future).get();
  CHECK(both == std::pair<std::string, int>{"req-1", 42});
  carried_id.reset();
  both = smartasync::async_offload(pool, [] { return std::pair{request_id::current, tenant::current}; },
                                   asio::use_future).get();
  CHECK(both == std::pair<std::string, int>{"", 42});
  carried_tenant = smartasync::context_registration{};
  both = smartasync::async_offload(pool, [] { return std::pair{request_id::current, tenant::current}; },
                                   asio::use_future).get();
  CHECK(both == std::pair<std::string, int>{"", 0});
  request_id::current.clear();
  tenant::current = 0;
}

TEST_CASE("a coroutine resumes with its own context, whatever other coroutines set meanwhile") {
  smartasync::blocking_pool pool{2, 16};
  auto carried = smartasync::carry_context<request_id>();
  asio::io_context io;
  std::vector<std::string> resumed_with;
  for (const char* name : {"A", "B", "C"}) {
    asio::co_spawn(io, [&, name]() -> asio::awaitable<void> {
      request_id::current = name; // each request sets its id on the shared loop thread
      const auto inside = co_await smartasync::async_offload(pool, [] { return request_id::current; });
      resumed_with.push_back(inside + "/" + request_id::current);
    }, asio::detached);
  }
  io.run();
  std::sort(resumed_with.begin(), resumed_with.end());
  CHECK(resumed_with == std::vector<std::string>{"A/A", "B/B", "C/C"});
  request_id::current.clear();
}

TEST_CASE("a carrier registered twice is carried once, until its last registration goes") {
  smartasync::blocking_pool pool{1, 16};
  auto first = smartasync::carry_context<tenant>();
  auto second = smartasync::carry_context<tenant>(); // e.g. two servers in one process
  tenant::current = 5;
  // Carried once: installing twice would leave the worker's own value behind on restore.
  CHECK(smartasync::async_offload(pool, [] { return tenant::current; }, asio::use_future).get() == 5);
  first.reset();
  CHECK(smartasync::async_offload(pool, [] { return tenant::current; }, asio::use_future).get() == 5);
  second.reset();
  CHECK(smartasync::async_offload(pool, [] { return tenant::current; }, asio::use_future).get() == 0);
  CHECK(smartasync::async_offload(pool, [] {
          auto moved = smartasync::carry_context<tenant>();
          smartasync::context_registration other = std::move(moved);
          return tenant::current;
        }, asio::use_future).get() == 0);
  tenant::current = 0;
}
