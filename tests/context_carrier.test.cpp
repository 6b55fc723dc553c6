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

namespace {

// Declared in one line; never registered.
using tenant_id = smartasync::carried_thread_local<int, struct tenant_id_tag>;
using region = smartasync::carried_thread_local<std::string, struct region_tag>;

static_assert(smartasync::context_carrier<tenant_id>);
static_assert(smartasync::context_carrier<smartasync::request_id>);

} // namespace

TEST_CASE("a carried_thread_local is carried to the worker and back without registration",
          "[carried_thread_local]") {
  smartasync::blocking_pool pool{1, 16};
  tenant_id::current() = 9;
  region::current() = "eu-west";
  const auto [seen_tenant, seen_region] = smartasync::async_offload(pool, [] {
    auto seen = std::pair{tenant_id::current(), region::current()};
    tenant_id::current() = -1; // the call's own change stays with the call
    return seen;
  }, asio::use_future).get();
  CHECK(seen_tenant == 9);
  CHECK(seen_region == "eu-west");
  CHECK(tenant_id::current() == 9); // the submitter's own value is untouched
  tenant_id::current() = 0;
  region::current().clear();
}

TEST_CASE("the built-in request_id reaches the worker, and each coroutine resumes with its own",
          "[carried_thread_local][request_id]") {
  smartasync::blocking_pool pool{2, 16};
  asio::io_context io;
  std::vector<std::string> resumed_with;
  for (const char* name : {"req-1", "req-2", "req-3"}) {
    asio::co_spawn(io, [&, name]() -> asio::awaitable<void> {
      smartasync::request_id::current() = name; // each request sets its id on the loop thread
      const auto inside =
          co_await smartasync::async_offload(pool, [] { return smartasync::request_id::current(); });
      resumed_with.push_back(inside + "/" + smartasync::request_id::current());
    }, asio::detached);
  }
  io.run();
  std::sort(resumed_with.begin(), resumed_with.end());
  CHECK(resumed_with == std::vector<std::string>{"req-1/req-1", "req-2/req-2", "req-3/req-3"});
  smartasync::request_id::current().clear();
}

TEST_CASE("registering a carried_thread_local as well carries it once, and for good",
          "[carried_thread_local]") {
  smartasync::blocking_pool pool{1, 16};
  tenant_id::current() = 5;
  const auto carried_now = [] {
    return smartasync::detail::carrier_registry::instance().active()->entries.size();
  };
  const std::size_t before = carried_now();
  {
    auto also = smartasync::carry_context<tenant_id>();
    CHECK(carried_now() == before); // the same carrier: counted, not added a second time
    CHECK(smartasync::async_offload(pool, [] { return tenant_id::current(); }, asio::use_future)
              .get() == 5);
  }
  tenant_id::current() = 6; // the registration is gone; the built-in carrying is not
  CHECK(carried_now() == before);
  CHECK(smartasync::async_offload(pool, [] { return tenant_id::current(); }, asio::use_future)
            .get() == 6);
  tenant_id::current() = 0;
}
