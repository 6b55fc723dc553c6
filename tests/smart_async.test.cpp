// Test that the header is self-contained.
#include <smartasync/smart_async.hpp>

#include "common/test_support.hpp"

#include <smartasync/serial_lane.hpp>

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(strand.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)
#include "common/catch.hpp"
#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using test_support::gate;

namespace {

struct custom_error {
  int code;
};

// Runs `body` as a coroutine on `ioc` and returns what it returns (or rethrows).
template <typename T, typename Body>
T run_coroutine(asio::io_context& ioc, Body body) {
  auto result = asio::co_spawn(ioc, body(), asio::use_future);
  ioc.run();
  return result.get();
}

} // namespace

// Row 1: a thread running no event loop calls inline.
TEST_CASE("sync form off a loop runs inline on the caller's thread", "[smart_async][matrix]") {
  smartasync::blocking_pool pool{2};
  auto where = smartasync::smart_async(pool, [] { return std::this_thread::get_id(); });
  CHECK(where() == std::this_thread::get_id());
  CHECK(pool.stats().submitted == 0);
}

TEST_CASE("sync form returns references and propagates exceptions unchanged",
          "[smart_async][matrix]") {
  smartasync::blocking_pool pool{1};
  int value = 1;
  auto ref = smartasync::smart_async(pool, [&value]() -> int& { return value; });
  static_assert(std::is_same_v<decltype(ref()), int&>);
  ref() = 5;
  CHECK(value == 5);

  auto throws = smartasync::smart_async(pool, [](int code) -> int { throw custom_error{code}; });
  try {
    throws(7);
    FAIL("expected custom_error");
  } catch (const custom_error& e) {
    CHECK(e.code == 7);
  }
}

// Row 2: a coroutine on an io_context offloads and resumes on its own executor.
TEST_CASE("co_await async offloads and resumes on the coroutine's thread", "[smart_async][matrix]") {
  smartasync::blocking_pool pool{2};
  auto where = smartasync::smart_async(pool, [] { return std::this_thread::get_id(); });
  asio::io_context ioc;
  auto ids = run_coroutine<std::pair<std::thread::id, std::thread::id>>(
      ioc, [&]() -> asio::awaitable<std::pair<std::thread::id, std::thread::id>> {
        auto worker = co_await where.async_call();
        co_return std::pair{worker, std::this_thread::get_id()};
      });
  CHECK(ids.first != std::this_thread::get_id()); // ran on a worker
  CHECK(ids.second == std::this_thread::get_id()); // resumed on the loop's thread
}

TEST_CASE("the loop keeps serving handlers while an offloaded call blocks",
          "[smart_async][matrix]") {
  // The blocking call can only finish after another handler on the same loop has run: if the
  // loop were blocked this would deadlock (and fail by the CTest timeout).
  smartasync::blocking_pool pool{1};
  gate released;
  auto blocking = smartasync::smart_async(pool, [&released] {
    released.wait();
    return 42;
  });
  asio::io_context ioc;
  std::vector<std::string> order;
  asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
    order.push_back("call");
    int v = co_await blocking.async_call();
    order.push_back("result " + std::to_string(v));
  }, asio::detached);
  asio::post(ioc, [&] {
    order.push_back("other handler");
    released.open();
  });
  ioc.run();
  CHECK(order == std::vector<std::string>{"call", "other handler", "result 42"});
}

TEST_CASE("co_await rethrows exceptions of any type", "[smart_async][matrix]") {
  smartasync::blocking_pool pool{1};
  auto std_error = smartasync::smart_async(pool, []() -> int { throw std::runtime_error("db"); });
  auto odd_error = smartasync::smart_async(pool, []() -> int { throw custom_error{3}; });
  auto int_error = smartasync::smart_async(pool, [] { throw 17; });
  asio::io_context ioc;
  int caught = 0;
  asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
    try {
      co_await std_error.async_call();
    } catch (const std::runtime_error& e) {
      caught += std::string(e.what()) == "db";
    }
    try {
      co_await odd_error.async_call();
    } catch (const custom_error& e) {
      caught += e.code == 3;
    }
    try {
      co_await int_error.async_call();
    } catch (int e) {
      caught += e == 17;
    }
  }, asio::detached);
  ioc.run();
  CHECK(caught == 3);
  CHECK(pool.stats().failed == 3);
}

TEST_CASE("a strand stays a strand", "[smart_async][matrix]") {
  smartasync::blocking_pool pool{2};
  auto work = smartasync::smart_async(pool, [](int x) { return x + 1; });
  asio::io_context ioc;
  auto strand = asio::make_strand(ioc);
  std::atomic<int> on_strand{0};
  for (int i = 0; i < 20; ++i)
    asio::co_spawn(strand, [&, i]() -> asio::awaitable<void> {
      int v = co_await work.async_call(i);
      on_strand += (v == i + 1 && strand.running_in_this_thread()) ? 1 : 0;
    }, asio::detached);
  std::thread second([&] { ioc.run(); });
  ioc.run();
  second.join();
  CHECK(on_strand == 20);
}

// Row 3: any thread, any token.
TEST_CASE("async speaks every completion token", "[smart_async][matrix]") {
  smartasync::blocking_pool pool{2};
  auto twice = smartasync::smart_async(pool, [](int x) { return 2 * x; });
  asio::io_context ioc;

  int from_callback = 0;
  std::exception_ptr callback_error;
  twice.async_call(1, [&](std::exception_ptr e, int v) {
    callback_error = e;
    from_callback = v;
  });
  auto future = twice.async_call(2, asio::use_future);
  auto deferred = twice.async_call(3, test_support::deferred);
  int from_deferred = 0;
  std::move(deferred)([&](std::exception_ptr, int v) { from_deferred = v; });
  twice.async_call(4, asio::detached);
  int from_bound = 0;
  bool bound_on_loop = false;
  twice.async_call(5, asio::bind_executor(ioc, [&](std::exception_ptr, int v) {
    from_bound = v;
    bound_on_loop = smartasync::this_thread::is_running_event_loop();
  }));

  CHECK(future.get() == 4);
  ioc.run();
  pool.shutdown(smartasync::shutdown_mode::drain);
  CHECK(from_callback == 2);
  CHECK_FALSE(callback_error);
  CHECK(from_deferred == 6);
  CHECK(from_bound == 10);
  CHECK(bound_on_loop);
  CHECK(pool.stats().completed == 5);
}

TEST_CASE("use_future carries exceptions and void results", "[smart_async][matrix]") {
  smartasync::blocking_pool pool{1};
  std::atomic<int> calls{0};
  auto touch = smartasync::smart_async(pool, [&calls] { ++calls; });
  touch.async_call(asio::use_future).get();
  CHECK(calls == 1);
  auto fails = smartasync::smart_async(pool, []() -> int { throw std::logic_error("bad"); });
  CHECK_THROWS_AS(fails.async_call(asio::use_future).get(), std::logic_error);
}

TEST_CASE("arguments are decay-copied unless wrapped in std::ref", "[smart_async]") {
  smartasync::blocking_pool pool{1};
  gate started, finish;
  auto read_later = smartasync::smart_async(pool, [&](const std::string& s) {
    started.open();
    finish.wait();
    return s;
  });
  std::string text = "before";
  auto copied = read_later.async_call(text, asio::use_future);
  started.wait();
  text = "after";
  finish.open();
  CHECK(copied.get() == "before");

  auto append = smartasync::smart_async(pool, [](std::string& s) { s += "!"; });
  append.async_call(std::ref(text), asio::use_future).get();
  CHECK(text == "after!");
}

TEST_CASE("queued calls outlive their wrapper, whether the callable is copied into each call or "
          "shared",
          "[smart_async]") {
  smartasync::blocking_pool pool{1};
  gate started, finish;
  auto blocker = smartasync::smart_async(pool, [&] {
    started.open();
    finish.wait();
  });
  auto blocked = blocker.async_call(asio::use_future);
  started.wait(); // the only worker is busy: the calls below stay queued

  std::future<int> copied, shared;
  {
    auto increment = [](int x) { return x + 1; };
    const std::string suffix(40, 'x'); // not trivially copyable: shared with the wrapper
    auto measure = [suffix](int x) { return x + static_cast<int>(suffix.size()); };
    static_assert(smartasync::detail::copied_into_calls_v<decltype(increment)>);
    static_assert(!smartasync::detail::copied_into_calls_v<decltype(measure)>);
    auto w1 = smartasync::smart_async(pool, increment);
    auto w2 = smartasync::smart_async(pool, measure);
    copied = w1.async_call(1, asio::use_future);
    shared = w2.async_call(2, asio::use_future);
  } // both wrappers are gone before their calls run
  finish.open();
  blocked.get();
  CHECK(copied.get() == 2);
  CHECK(shared.get() == 42);
}

TEST_CASE("move-only arguments and results travel through the pool", "[smart_async]") {
  smartasync::blocking_pool pool{1};
  auto bump = smartasync::smart_async(pool, [](std::unique_ptr<int> p) {
    ++*p;
    return p;
  });
  auto result = bump.async_call(std::make_unique<int>(41), asio::use_future).get();
  REQUIRE(result);
  CHECK(*result == 42);
}

// Row 4: the classic mistake, a blocking call made synchronously on a loop thread.
TEST_CASE("sync form on a loop thread is reported for each call expression, naming its line",
          "[smart_async][matrix][diagnostics]") {
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{1};
  const auto made_on = __LINE__ + 1;
  auto slow = smartasync::smart_async(pool, [](int x) { return x; }, {.name = "slow lookup"});
  asio::io_context ioc;
  int sum = 0;
  std::uint_least32_t first = 0, second = 0;
  asio::post(ioc, [&] {
    for (int i = 0; i < 3; ++i) {
      first = __LINE__; sum += slow(1); // runs inline; this expression is reported once
    }
  });
  asio::post(ioc, [&] {
    second = __LINE__; sum += slow(2); // another handler's call: a mistake of its own
  });
  ioc.run();
  CHECK(sum == 5);
  auto reports = capture.reports();
  REQUIRE(reports.size() == 2);
  CHECK(pool.stats().submitted == 0);
  const std::uint_least32_t lines[] = {first, second};
  for (std::size_t i = 0; i < 2; ++i) {
    INFO("report " << i << ": " << reports[i].message);
    CHECK(reports[i].kind == smartasync::diagnostic_kind::blocking_call_on_loop);
    CHECK(reports[i].name == "slow lookup");
    CHECK(reports[i].thread == std::this_thread::get_id());
    CHECK(std::string(reports[i].where.file_name()).find("smart_async.test.cpp") != std::string::npos);
    CHECK(reports[i].where.line() == lines[i]);
    CHECK(reports[i].created_at.line() == made_on);
    CHECK(reports[i].message.find("'slow lookup'") != std::string::npos);
    CHECK(reports[i].message.find(fmt::format("smart_async.test.cpp:{}", lines[i])) !=
          std::string::npos);
    CHECK(reports[i].message.find("co_await w.async_call(") != std::string::npos);
  }
}

namespace {
int add_one(int x) { return x + 1; }

template <typename Wrapper>
auto call_through_template(const Wrapper& w, int x) {
  return w(x); // one call expression, for every wrapper passed in
}
} // namespace

TEST_CASE("every kind of callable with one parameter list names the call expression",
          "[smart_async][diagnostics]") {
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{1};
  auto pointer = smartasync::smart_async(pool, &add_one);
  auto stop_aware = smartasync::smart_async(
      pool, [](std::stop_token token, const std::string& s) { return token.stop_requested() ? 0 : int(s.size()); });
  auto by_value = smartasync::smart_async(pool, [](std::unique_ptr<int> p) { return *p; });
  auto by_reference = smartasync::smart_async(pool, [](int& x) { return ++x; });
  smartasync::any_smart_async_function<int(int)> erased = pointer;
  asio::io_context ioc;
  std::vector<std::uint_least32_t> lines;
  int counter = 10;
  asio::post(ioc, [&] {
    lines.push_back(__LINE__); CHECK(pointer(1) == 2);
    lines.push_back(__LINE__); CHECK(stop_aware("four") == 4); // converted at the call
    lines.push_back(__LINE__); CHECK(by_value(std::make_unique<int>(7)) == 7);
    lines.push_back(__LINE__); CHECK(by_reference(counter) == 11);
    lines.push_back(__LINE__); CHECK(erased(2) == 3);
  });
  ioc.run();
  CHECK(counter == 11); // a reference parameter still refers to the caller's variable
  const auto reports = capture.reports();
  REQUIRE(reports.size() == lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    INFO(reports[i].message);
    CHECK(reports[i].where.line() == lines[i]);
    CHECK(reports[i].message.find(fmt::format("called at {}:{}", reports[i].where.file_name(),
                                              lines[i])) != std::string::npos);
  }
  CHECK(reports[4].created_at.line() == pointer.created_at().line()); // erasure keeps the site
}

TEST_CASE("default arguments and braced lists reach the callable through the sync form",
          "[smart_async][diagnostics]") {
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{1};
  auto scaled = smartasync::smart_async(pool, [](int x, int factor = 2) { return x * factor; },
                                        {.name = "scaled"});
  auto count = smartasync::smart_async(pool, [](const std::vector<int>& v) { return v.size(); },
                                       {.name = "count"});
  CHECK(scaled(3) == 6); // off the loop: the callable's own default
  CHECK(scaled(3, 3) == 9);
  CHECK(count({1, 2, 3}) == 3u);
  asio::io_context ioc;
  std::uint_least32_t full = 0;
  asio::post(ioc, [&] {
    CHECK(scaled(4) == 8); // no type carries the default: this call's site is not known
    full = __LINE__; CHECK(scaled(4, 3) == 12);
  });
  ioc.run();
  const auto reports = capture.reports();
  REQUIRE(reports.size() == 2);
  CHECK(reports[0].message.find("call site is not known") != std::string::npos);
  CHECK(reports[0].where.line() == reports[0].created_at.line());
  CHECK(reports[1].where.line() == full);
}

namespace {
// Counts its copies and moves, to see what the sync form costs a by-value parameter.
struct counted_argument {
  int* copies;
  int* moves;
  counted_argument(int* c, int* m) : copies(c), moves(m) {}
  counted_argument(const counted_argument& other) : copies(other.copies), moves(other.moves) {
    ++*copies;
  }
  counted_argument(counted_argument&& other) noexcept : copies(other.copies), moves(other.moves) {
    ++*moves;
  }
  counted_argument& operator=(const counted_argument&) = delete;
  counted_argument& operator=(counted_argument&&) = delete;
};
} // namespace

TEST_CASE("a by-value parameter is moved once on its way through the sync form, never copied",
          "[smart_async]") {
  smartasync::blocking_pool pool{1};
  auto take = smartasync::smart_async(pool, [](counted_argument a) { return *a.moves; });
  int copies = 0, moves = 0;
  CHECK(take(counted_argument{&copies, &moves}) == 1); // the prvalue initialises the parameter
  CHECK(copies == 0);
  CHECK(moves == 1);
  const counted_argument lvalue{&copies, &moves};
  moves = 0;
  take(lvalue); // as calling the lambda directly: one copy, then the one move
  CHECK(copies == 1);
  CHECK(moves == 1);
}

TEST_CASE("two wrappers called from one expression in a template are reported apart",
          "[smart_async][diagnostics]") {
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{1};
  auto first = smartasync::smart_async(pool, [](int x) { return x; }, {.name = "first"});
  auto second = smartasync::smart_async(pool, [](int x) { return -x; }, {.name = "second"});
  asio::io_context ioc;
  asio::post(ioc, [&] {
    CHECK(call_through_template(first, 1) == 1);
    CHECK(call_through_template(second, 1) == -1);
  });
  ioc.run();
  const auto reports = capture.reports();
  REQUIRE(reports.size() == 2);
  CHECK(reports[0].name == "first");
  CHECK(reports[1].name == "second");
  CHECK(reports[0].where.line() == reports[1].where.line());
}

// `co_await w(x)` where `w.async_call(x)` was meant: Asio before 1.28 (Boost before 1.82) reads
// `co_await <bool>` as this_coro::throw_if_cancelled(value), so with a result convertible to
// bool it compiles and runs w inline on the loop. No wrapper can refuse that at compile time
// (the operand is the sync form's result, which `auto v = w(x)` needs to be the plain value),
// so the report names the co_await's own line, and a strict wrapper throws instead of running.
// Later Asio made that conversion explicit (its issue 1203): there the statement does not
// compile, whatever the result type.
#if SMARTASYNC_ASIO_VERSION < 102800
TEST_CASE("co_await on a sync call's bool result is reported at its line, and strict refuses it",
          "[smart_async][diagnostics]") {
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{1};
  std::atomic<int> runs{0};
  auto check = smartasync::smart_async(pool, [&runs](int x) { ++runs; return x > 0; },
                                       {.name = "check"});
  auto guarded = smartasync::smart_async(pool, [&runs](int x) { ++runs; return x > 0; },
                                         {.name = "guarded",
                                          .on_loop = smartasync::loop_call_policy::strict});
  asio::io_context ioc;
  std::uint_least32_t line = 0;
  smartasync::error_code refused;
  auto body = [&]() -> asio::awaitable<void> {
    line = __LINE__; co_await check(1); // the mistake: check.async_call(1) was meant
    try {
      co_await guarded(1);
    } catch (const smartasync::system_error& e) {
      refused = e.code();
    }
  };
  asio::co_spawn(ioc, body(), asio::detached);
  ioc.run();
  CHECK(runs == 1); // check ran inline; guarded did not run
  CHECK(refused == smartasync::error::blocking_call_on_loop);
  const auto reports = capture.reports();
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].name == "check");
  CHECK(reports[0].where.line() == line);
  CHECK(reports[0].message.find("co_await w.async_call(") != std::string::npos);
}
#endif

TEST_CASE("a generic callable's report names where it was wrapped, and says why",
          "[smart_async][diagnostics]") {
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{1};
  const auto made_on = __LINE__ + 1;
  auto twice = smartasync::smart_async(pool, [](auto x) { return x * 2; });
  asio::io_context ioc;
  asio::post(ioc, [&] { CHECK(twice(21) == 42); });
  ioc.run();
  const auto reports = capture.reports();
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].where.line() == made_on);
  CHECK(reports[0].created_at.line() == made_on);
  CHECK(reports[0].message.find("call site is not known") != std::string::npos);
}

TEST_CASE("a loop-call site is reported again at a bounded rate, with a count",
          "[smart_async][diagnostics]") {
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{1};
  auto slow = smartasync::smart_async(pool, [](int x) { return x; }, {.name = "repeat"});
  asio::io_context ioc;
  const auto previous = smartasync::set_report_repeat_interval(std::chrono::hours(1));
  auto call_on_loop = [&](int times) {
    asio::post(ioc, [&, times] {
      for (int i = 0; i < times; ++i)
        slow(i);
    });
    ioc.run();
    ioc.restart();
  };
  call_on_loop(4); // reported once, three left unreported within the hour
  CHECK(capture.reports().size() == 1);
  smartasync::set_report_repeat_interval(std::chrono::steady_clock::duration::zero());
  call_on_loop(1); // the interval has passed: reported, with the count of the quiet ones
  smartasync::set_report_repeat_interval(previous);
  const auto reports = capture.reports();
  REQUIRE(reports.size() == 2);
  CHECK(reports[0].message.find("more since") == std::string::npos);
  CHECK(reports[1].message.find("3 more since the last report") != std::string::npos);
}

TEST_CASE("strict policy throws on a loop thread without running the call",
          "[smart_async][matrix]") {
  smartasync::blocking_pool pool{1};
  int runs = 0;
  auto guarded = smartasync::smart_async(pool, [&runs] { return ++runs; },
                                         {.name = "guarded", .on_loop = smartasync::loop_call_policy::strict});
  asio::io_context ioc;
  smartasync::error_code seen;
  std::string message;
  std::uint_least32_t called_on = 0;
  asio::post(ioc, [&] {
    try {
      called_on = __LINE__; guarded();
    } catch (const smartasync::system_error& e) {
      seen = e.code();
      message = e.what();
    }
  });
  ioc.run();
  CHECK(seen == smartasync::error::blocking_call_on_loop);
  CHECK(message.find("'guarded'") != std::string::npos);
  CHECK(message.find(fmt::format("smart_async.test.cpp:{}", called_on)) != std::string::npos);
  CHECK(runs == 0);
  CHECK(guarded() == 1); // off the loop, strict changes nothing
}

TEST_CASE("silent policy runs inline on a loop and reports nothing", "[smart_async][matrix]") {
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{1};
  auto quiet = smartasync::smart_async(pool, [] { return std::this_thread::get_id(); },
                                       {.on_loop = smartasync::loop_call_policy::silent});
  asio::io_context ioc;
  std::thread::id ran_on;
  asio::post(ioc, [&] { ran_on = quiet(); });
  ioc.run();
  CHECK(ran_on == std::this_thread::get_id());
  CHECK(capture.reports().empty());
}

// Row 5: nested wrapped calls on a worker of the same pool run inline.
TEST_CASE("nested calls on a worker of the same pool run inline, never queue",
          "[smart_async][matrix]") {
  smartasync::blocking_pool pool{1, 1}; // one worker: queueing a nested call would deadlock
  auto inner = smartasync::smart_async(pool, [] { return std::this_thread::get_id(); });
  auto outer = smartasync::smart_async(pool, [&] {
    auto via_sync = inner();
    auto via_future = inner.async_call(asio::use_future).get();
    return std::tuple{std::this_thread::get_id(), via_sync, via_future};
  });
  auto [outer_id, sync_id, future_id] = outer.async_call(asio::use_future).get();
  CHECK(outer_id != std::this_thread::get_id());
  CHECK(sync_id == outer_id);
  CHECK(future_id == outer_id);
  // Both async calls are in the books, the nested one included, and each ended once (the
  // sync form is a plain function call and never reaches the pool).
  const auto stats = pool.stats();
  CHECK(stats.submitted == 2);
  CHECK(stats.completed == 2);
  CHECK(stats.running == 0);
}

TEST_CASE("a nested async callback is not invoked inside the initiating call", "[smart_async]") {
  smartasync::blocking_pool pool{1};
  auto inner = smartasync::smart_async(pool, [] { return 1; });
  auto outer = smartasync::smart_async(pool, [&] {
    // The callback may run on another thread at any time (even before async() returns);
    // what must never happen is running on this thread, inside the initiating call.
    auto done = std::make_shared<std::promise<int>>();
    auto initiating = std::make_shared<std::atomic<bool>>(true);
    const auto initiator = std::this_thread::get_id();
    inner.async_call([initiating, done, initiator](std::exception_ptr, int v) {
      const bool inside = initiating->load() && std::this_thread::get_id() == initiator;
      done->set_value(inside ? -1 : v);
    });
    initiating->store(false);
    return done->get_future();
  });
  auto inner_result = outer.async_call(asio::use_future).get();
  CHECK(inner_result.get() == 1);
}

TEST_CASE("a callable taking std::stop_token gets a never-stopped token when called sync",
          "[smart_async]") {
  smartasync::blocking_pool pool{1};
  auto aware = smartasync::smart_async(pool, [](std::stop_token token, int x) {
    return std::pair{token.stop_possible(), x};
  });
  CHECK(aware(5) == std::pair{false, 5});                            // nobody can stop it
  CHECK(aware.async_call(6, asio::use_future).get() == std::pair{true, 6}); // cancellation can
}

TEST_CASE("smart_async without a pool uses the default pool lazily", "[smart_async]") {
  auto id = smartasync::smart_async([] { return smartasync::this_thread::current_pool(); });
  CHECK(id() == nullptr);
  CHECK(id.async_call(asio::use_future).get() == &smartasync::default_pool());
  CHECK(&id.pool() == &smartasync::default_pool());
}

namespace {
// What a user stores: a class whose member wrapper hides the lambda's type.
class repository {
public:
  explicit repository(smartasync::blocking_pool& pool)
      : lookup_(smartasync::smart_async(pool, [this](int key) { return key * factor_; },
                                        {.name = "repository lookup"})),
        wait_(smartasync::smart_async(pool, [](std::stop_token stop, int polls) {
          for (int i = 0; i < polls && !stop.stop_requested(); ++i)
            std::this_thread::sleep_for(1ms);
          return stop.stop_requested();
        })) {}
  const smartasync::any_smart_async_function<int(int)>& lookup() const { return lookup_; }
  const smartasync::any_smart_async_function<bool(std::stop_token, int)>& wait() const { return wait_; }

private:
  int factor_ = 3;
  smartasync::any_smart_async_function<int(int)> lookup_;
  smartasync::any_smart_async_function<bool(std::stop_token, int)> wait_;
};
} // namespace

TEST_CASE("any_smart_async_function stores any wrapper as a member and keeps its pool and name",
          "[smart_async][any]") {
  smartasync::blocking_pool pool{1, 8};
  repository repo(pool);
  CHECK(repo.lookup()(14) == 42); // sync form, on this thread
  CHECK(repo.lookup().name() == "repository lookup");
  CHECK(&repo.lookup().pool() == &pool);
  CHECK(repo.lookup().async_call(5, asio::use_future).get() == 15);
  CHECK(pool.stats().completed == 1);

  // A stop_token signature stays stop-aware through the erasure: a cancelled call sees it.
  asio::io_context ioc;
  auto stopped = test_support::run_then_cancel(ioc, [&]() -> asio::awaitable<bool> {
    co_return co_await repo.wait().async_call(100000);
  }());
  CHECK(test_support::code_of(stopped) == asio::error::operation_aborted);
}

TEST_CASE("a wrapper that outlives its pool completes async calls with pool_stopped",
          "[smart_async][lifetime]") {
  auto pool = std::make_unique<smartasync::blocking_pool>(1);
  // A small callable (copied into each call) and a large one (shared with the wrapper).
  auto twice = smartasync::smart_async(*pool, [](int x) { return 2 * x; });
  std::string tag(64, 'x');
  auto tagged = smartasync::smart_async(*pool, [tag](int x) { return tag.size() + std::size_t(x); });
  CHECK(twice.async_call(2, asio::use_future).get() == 4);
  asio::io_context ioc;
  // Made while the pool lives, launched after it is gone.
  auto deferred = twice.async_call(3, test_support::deferred);
  pool.reset();

  CHECK(twice(5) == 10); // the sync form never needed the pool
  CHECK(tagged(1) == 65);
  try {
    twice.async_call(5, asio::use_future).get();
    FAIL("expected pool_stopped");
  } catch (const smartasync::system_error& e) {
    CHECK(e.code() == smartasync::error::pool_stopped);
  }
  CHECK(test_support::code_thrown_by([&] { tagged.async_call(1, asio::use_future).get(); }) ==
        smartasync::error::pool_stopped);

  // A callback completes through its executor, never inside the initiating call.
  bool called = false;
  std::exception_ptr error;
  twice.async_call(1, asio::bind_executor(ioc, [&](std::exception_ptr e, int) {
    called = true;
    error = e;
  }));
  CHECK_FALSE(called);
  ioc.run();
  ioc.restart();
  CHECK(called);
  CHECK(test_support::code_of(error) == smartasync::error::pool_stopped);

  auto launched = run_coroutine<smartasync::error_code>(
      ioc, [&]() -> asio::awaitable<smartasync::error_code> {
        try {
          co_await std::move(deferred)(asio::use_awaitable);
        } catch (const smartasync::system_error& e) {
          co_return e.code();
        }
        co_return smartasync::error_code{};
      });
  CHECK(launched == smartasync::error::pool_stopped);
}

namespace {
constexpr auto variadic = [](const auto&... xs) { return sizeof...(xs); };
using variadic_t = std::remove_const_t<decltype(variadic)>;
using two_ints = int (*)(int, int);
using callback = std::function<void(std::exception_ptr, int)>;
using takes_callback = void (*)(int, callback);
using smartasync::detail::find_token;
using smartasync::detail::token_position;
using use_future_t = std::decay_t<decltype(asio::use_future)>;

// The token rule, as async() applies it.
static_assert(find_token<two_ints, int, int>() == token_position::none);
static_assert(find_token<two_ints, int, int, use_future_t>() == token_position::last);
static_assert(find_token<two_ints, int, int, callback>() == token_position::last);
// The callable cannot take (int) alone: the callback is its argument, not a token.
static_assert(find_token<takes_callback, int, callback>() == token_position::none);
static_assert(find_token<variadic_t, int, int>() == token_position::none);
static_assert(find_token<variadic_t, int, int, use_future_t>() == token_position::ambiguous);
static_assert(find_token<variadic_t, int, int,
                         smartasync::detail::as_token_t<use_future_t>>() == token_position::marked);
} // namespace

TEST_CASE("a token after a non-generic callable's arguments is the completion token",
          "[smart_async][token]") {
  smartasync::blocking_pool pool{1};
  auto add = smartasync::smart_async(pool, [](int a, int b) { return a + b; });
  CHECK(add.async_call(1, 2, asio::use_future).get() == 3);
  CHECK(add.async_call(1, 2, smartasync::as_token(asio::use_future)).get() == 3);
}

TEST_CASE("as_token says which argument of a variadic callable is the token",
          "[smart_async][token]") {
  smartasync::blocking_pool pool{1};
  auto count = smartasync::smart_async(pool, variadic);
  // Completes through use_future: the callable sees two arguments.
  std::future<std::size_t> two = count.async_call(1, 2, smartasync::as_token(asio::use_future));
  CHECK(two.get() == 2);
  // use_future is the callable's third argument; the call completes through a callback.
  auto token = asio::use_future;
  std::promise<std::size_t> seen;
  count.async_call(1, 2, token, smartasync::as_token([&](std::exception_ptr, std::size_t n) {
                seen.set_value(n);
              }));
  CHECK(seen.get_future().get() == 3);
  CHECK(count(1, 2, asio::use_future) == 3); // the sync form has no token
}

TEST_CASE("a callback that a callable takes as its last parameter stays an argument",
          "[smart_async][token]") {
  smartasync::blocking_pool pool{1};
  auto call_back = smartasync::smart_async(pool, [](int x, const callback& cb) { cb(nullptr, x); });
  std::promise<int> called_back;
  std::future<void> done = call_back.async_call(
      7, callback([&](std::exception_ptr, int x) { called_back.set_value(x); }), asio::use_future);
  done.get();
  CHECK(called_back.get_future().get() == 7);
}

namespace {
// Cancelled while running, it keeps going until `finish` opens: it takes no stop token.
struct ignores_stop_request {
  gate* started;
  gate* finish;
  int operator()(int x) const {
    started->open();
    finish->wait();
    return x;
  }
};

std::vector<smartasync::diagnostic> reports_of(test_support::diagnostics_capture& capture,
                                               smartasync::diagnostic_kind kind) {
  auto all = capture.reports();
  std::erase_if(all, [&](const smartasync::diagnostic& d) { return d.kind != kind; });
  return all;
}

// Starts `start(handler)` with a handler on `ioc` bound to a cancellation slot, cancels it
// (terminal) once `started` is open, and waits for a stop_ignored report before opening
// `finish`; returns the reports.
template <typename Start>
std::vector<smartasync::diagnostic> cancel_and_collect_stop_reports(Start start, gate& started,
                                                                    gate& finish) {
  test_support::diagnostics_capture capture;
  asio::io_context ioc;
  asio::cancellation_signal signal;
  std::exception_ptr outcome;
  start(asio::bind_cancellation_slot(
      signal.slot(), asio::bind_executor(ioc, [&](std::exception_ptr e, auto&&...) { outcome = e; })));
  started.wait();
  asio::post(ioc, [&] { signal.emit(asio::cancellation_type::terminal); });
  std::thread loop([&] { ioc.run(); });
  while (reports_of(capture, smartasync::diagnostic_kind::stop_ignored).empty())
    std::this_thread::sleep_for(1ms);
  finish.open();
  loop.join();
  CHECK(test_support::code_of(outcome) == asio::error::operation_aborted);
  return reports_of(capture, smartasync::diagnostic_kind::stop_ignored);
}

smartasync::pool_options reports_ignored_stops_at_once() {
  smartasync::pool_options options;
  options.threads = 1;
  options.report_ignored_stop_after = 1ms;
  return options;
}
} // namespace

TEST_CASE("a call that ignores its stop request is reported with its wrapper's name and site",
          "[smart_async][diagnostics]") {
  smartasync::blocking_pool pool{reports_ignored_stops_at_once()};
  gate started, finish;
  auto slow = smartasync::smart_async(pool, ignores_stop_request{&started, &finish},
                                      {.name = "slow lookup"});
  const auto reports = cancel_and_collect_stop_reports(
      [&](auto handler) { slow.async_call(1, std::move(handler)); }, started, finish);
  const auto& d = reports.front();
  INFO(d.message);
  CHECK(d.name == "slow lookup");
  CHECK(d.created_at.line() == slow.created_at().line());
  CHECK(d.where.line() == slow.created_at().line());
  CHECK(d.message.find("'slow lookup'") != std::string::npos);
  CHECK(d.message.find(fmt::format("{}:{}", slow.created_at().file_name(),
                                   slow.created_at().line())) != std::string::npos);
}

TEST_CASE("an unnamed wrapper's ignored stop is reported with its creation site",
          "[smart_async][diagnostics]") {
  smartasync::blocking_pool pool{reports_ignored_stops_at_once()};
  gate started, finish;
  auto slow = smartasync::smart_async(pool, ignores_stop_request{&started, &finish});
  const auto reports = cancel_and_collect_stop_reports(
      [&](auto handler) { slow.async_call(1, std::move(handler)); }, started, finish);
  const auto& d = reports.front();
  INFO(d.message);
  CHECK(d.name.empty());
  CHECK(d.message.find(fmt::format("wrapped at {}:{}", slow.created_at().file_name(),
                                   slow.created_at().line())) != std::string::npos);
}

TEST_CASE("an offloaded callable that ignores its stop request is reported by its type",
          "[smart_async][diagnostics]") {
  smartasync::blocking_pool pool{reports_ignored_stops_at_once()};
  gate started, finish;
  const auto reports = cancel_and_collect_stop_reports(
      [&](auto handler) {
        smartasync::async_offload(pool, [call = ignores_stop_request{&started, &finish}] {
          return call(1);
        }, std::move(handler));
      },
      started, finish);
  INFO(reports.front().message);
  // A lambda's type names the function it was written in.
  CHECK(reports.front().message.find("callable ") != std::string::npos);
}

TEST_CASE("a handler that throws on a worker is reported with its wrapper's name",
          "[smart_async][diagnostics]") {
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{1};
  auto lookup = smartasync::smart_async(pool, [](int x) { return x; }, {.name = "lookup"});
  lookup.async_call(1, [](std::exception_ptr, int) { throw std::runtime_error("handler broke"); });
  pool.shutdown(); // drains: the handler has run
  const auto reports = reports_of(capture, smartasync::diagnostic_kind::handler_exception);
  REQUIRE(reports.size() == 1);
  INFO(reports.front().message);
  CHECK(reports.front().name == "lookup");
  CHECK(reports.front().created_at.line() == lookup.created_at().line());
  CHECK(reports.front().message.find("'lookup'") != std::string::npos);
  CHECK(reports.front().message.find("handler broke") != std::string::npos);
}

// The old public spelling of the wrapper's factory still works (deprecated).
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
TEST_CASE("make_smart_function still makes a wrapper, as smart_async does",
          "[smart_async][deprecated]") {
  smartasync::blocking_pool pool{1};
  auto twice = smartasync::make_smart_function(&pool, [](int x) { return 2 * x; }, {},
                                               smartasync::source_location::current());
  CHECK(twice(2) == 4);
  CHECK(twice.async_call(3, asio::use_future).get() == 6);
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
namespace {
// Cancels (terminal) a running call of a wrapper made with `on_cancel`; true if the caller was
// completed with operation_aborted while the call was still running.
bool completed_while_running(smartasync::running_cancel on_cancel) {
  smartasync::blocking_pool pool{1};
  auto started = std::make_shared<gate>();
  auto finish = std::make_shared<gate>();
  auto returned = std::make_shared<std::atomic<bool>>(false);
  // Owns everything it touches (shared_ptr captures), as an abandoned call must.
  auto slow = smartasync::smart_async(pool, [=](std::stop_token) {
    started->open();
    finish->wait();
    *returned = true;
    return 5;
  }, {.on_cancel = on_cancel});
  asio::io_context ioc;
  asio::cancellation_signal signal;
  std::exception_ptr outcome;
  bool handled = false;
  slow.async_call(asio::bind_cancellation_slot(signal.slot(),
      asio::bind_executor(ioc, [&](std::exception_ptr e, int) {
        outcome = e;
        handled = true;
      })));
  started->wait();
  signal.emit(asio::cancellation_type::terminal);
  ioc.run(); // returns once the handler ran: at once when abandoned
  const bool early = handled && !*returned &&
                     test_support::code_of(outcome) == asio::error::operation_aborted;
  finish->open();
  pool.shutdown();
  return early;
}
} // namespace

TEST_CASE("running_cancel::abandon completes a cancelled running call at once",
          "[smart_async][cancel]") {
  CHECK(completed_while_running(smartasync::running_cancel::abandon));
}

// The former names stay one release; each still works (its deprecation warning silenced here,
// where using it is the point).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
TEST_CASE("the former running_cancel::abandon_call still abandons", "[smart_async][deprecated]") {
  static_assert(smartasync::running_cancel::abandon_call == smartasync::running_cancel::abandon);
  CHECK(completed_while_running(smartasync::running_cancel::abandon_call));
}

TEST_CASE("the former async() still offloads to the wrapper's pool", "[smart_async][deprecated]") {
  smartasync::blocking_pool pool{1};
  auto where = smartasync::smart_async(pool, [](int x) {
    return std::pair{smartasync::this_thread::current_pool(), x};
  });
  CHECK(where.async(7, asio::use_future).get() == std::pair{&pool, 7});
}

TEST_CASE("the former smart_function names the wrapper type", "[smart_async][deprecated]") {
  smartasync::blocking_pool pool{1};
  auto add_one = +[](int x) { return x + 1; };
  smartasync::smart_function<int (*)(int)> w = smartasync::smart_async(pool, add_one);
  static_assert(std::is_same_v<decltype(w), smartasync::smart_async_function<int (*)(int)>>);
  CHECK(w(1) == 2);
}

TEST_CASE("the former any_smart_function still erases a wrapper's callable",
          "[smart_async][deprecated]") {
  smartasync::blocking_pool pool{1};
  smartasync::any_smart_function<int(int)> w =
      smartasync::smart_async(pool, [](int x) { return x + 1; }, {.name = "add one"});
  static_assert(std::is_same_v<decltype(w), smartasync::any_smart_async_function<int(int)>>);
  CHECK(w(1) == 2);
  CHECK(w.name() == "add one");
}
#pragma GCC diagnostic pop

// --- A wrapper on a lane: the same wrapper, the lane's rules ---

namespace {

// Waits (yielding) until `ready()`; the test's timeout turns a hang into a failure.
template <typename Ready>
void wait_until(Ready ready) {
  while (!ready())
    std::this_thread::yield();
}

} // namespace

TEST_CASE("a wrapper on a serial lane keeps the lane's order for both forms, and its sync form "
          "runs on the calling thread",
          "[smart_async][lanes]") {
  smartasync::blocking_pool pool{2};
  smartasync::serial_lane lane{pool};
  std::mutex m;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  auto record = smartasync::smart_async(lane, [&](int n) {
    std::lock_guard lock(m);
    order.push_back(n);
    threads.push_back(std::this_thread::get_id());
    return n;
  });
  gate hold;
  auto first = smartasync::async_offload(lane, [&] { hold.wait(); record(0); }, asio::use_future);
  wait_until([&] { return lane.stats().busy; });
  auto second = record.async_call(1, asio::use_future);
  wait_until([&] { return lane.stats().queued == 1; });
  std::thread::id caller;
  std::thread sync_caller([&] {
    caller = std::this_thread::get_id();
    record(2);
  });
  wait_until([&] { return lane.stats().queued == 2; }); // the sync call waits for its turn
  {
    std::lock_guard lock(m);
    CHECK(order.empty());
  }
  hold.open();
  first.get();
  CHECK(second.get() == 1);
  sync_caller.join();
  CHECK(order == std::vector<int>{0, 1, 2});
  CHECK(threads[2] == caller);
  CHECK(lane.stats().submitted == 3);
}

TEST_CASE("a wrapper on a thread-affine lane runs both forms on the lane's thread",
          "[smart_async][lanes]") {
  smartasync::thread_affine_lane lane;
  auto where = smartasync::smart_async(lane, [] { return std::this_thread::get_id(); });
  CHECK(where() == lane.thread_id());
  CHECK(where.async_call(asio::use_future).get() == lane.thread_id());
  CHECK(test_support::run([&]() -> asio::awaitable<std::thread::id> {
          co_return co_await where.async_call();
        }()) == lane.thread_id());
  CHECK(&where.pool() == &lane.pool());

  int value = 7; // a callable returning a reference returns that reference, not a copy
  auto ref = smartasync::smart_async(lane, [&value]() -> int& { return value; });
  CHECK(&ref() == &value);
}

TEST_CASE("a lane wrapper's async form takes every token and is cancelled like "
          "async_offload(lane, ...)",
          "[smart_async][lanes]") {
  smartasync::blocking_pool pool{2};
  smartasync::serial_lane lane{pool};
  std::atomic<int> runs{0};
  auto twice = smartasync::smart_async(lane, [&](int x) { ++runs; return 2 * x; });

  std::promise<int> via_callback;
  twice.async_call(4, [&](std::exception_ptr e, int v) {
    if (e)
      via_callback.set_exception(e);
    else
      via_callback.set_value(v);
  });
  CHECK(via_callback.get_future().get() == 8);
  CHECK(twice.async_call(5, asio::use_future).get() == 10);
  auto later = twice.async_call(6, test_support::deferred);
  CHECK(std::move(later)(asio::use_future).get() == 12);

  // Waiting for its turn behind a held lane, a cancelled call never runs.
  gate hold;
  auto holder = smartasync::async_offload(lane, [&] { hold.wait(); }, asio::use_future);
  wait_until([&] { return lane.stats().busy; });
  runs = 0;
  asio::io_context ioc;
  auto outcome = test_support::run_then_cancel(
      ioc, [&]() -> asio::awaitable<int> { co_return co_await twice.async_call(7); }());
  CHECK(test_support::code_of(outcome) == asio::error::operation_aborted);
  hold.open();
  holder.get();
  CHECK(twice(1) == 2);
  CHECK(runs == 1);
  CHECK(lane.stats().cancelled == 1);
}

TEST_CASE("on a loop, a lane wrapper's sync form follows the wrapper's policy, checked once",
          "[smart_async][lanes][diagnostics]") {
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{1};
  // The lane's own policy is not consulted for the wrapper's calls: the wrapper's is.
  smartasync::serial_lane lane{pool, {.name = "lane", .on_loop = smartasync::loop_call_policy::strict}};
  smartasync::thread_affine_lane affine{{.on_loop = smartasync::loop_call_policy::strict}};
  int runs = 0;
  auto reported = smartasync::smart_async(lane, [&runs] { return ++runs; }, {.name = "insert"});
  auto on_thread = smartasync::smart_async(affine, [] { return std::this_thread::get_id(); },
                                           {.name = "gui call"});
  auto refused = smartasync::smart_async(lane, [&runs] { return ++runs; },
                                         {.on_loop = smartasync::loop_call_policy::strict});
  asio::io_context ioc;
  std::uint_least32_t called_on = 0;
  std::thread::id ran_on;
  smartasync::error_code refusal;
  asio::post(ioc, [&] {
    called_on = __LINE__; reported();
    ran_on = on_thread();
    refusal = test_support::code_thrown_by([&] { refused(); });
  });
  ioc.run();
  CHECK(runs == 1);
  CHECK(ran_on == affine.thread_id());
  CHECK(refusal == smartasync::error::blocking_call_on_loop);
  CHECK(lane.stats().submitted == 1); // the refused call never reached the lane
  const auto reports = capture.reports();
  REQUIRE(reports.size() == 2);
  CHECK(reports[0].name == "insert");
  CHECK(reports[0].where.line() == called_on);
  CHECK(reports[0].message.find("blocking call 'insert'") != std::string::npos);
  CHECK(reports[1].name == "gui call");
}

TEST_CASE("a wrapper that outlives its lane gets a clear error, never freed memory",
          "[smart_async][lanes]") {
  SECTION("serial lane, then its pool") {
    auto pool = std::make_unique<smartasync::blocking_pool>(1);
    auto lane = std::make_unique<smartasync::serial_lane>(*pool);
    auto w = smartasync::smart_async(*lane, [](int x) { return x; });
    CHECK(w(1) == 1);
    lane.reset();
    CHECK(test_support::code_thrown_by([&] { w.async_call(2, asio::use_future).get(); }) ==
          smartasync::error::pool_stopped);
    CHECK(test_support::code_thrown_by([&] { w(3); }) == asio::error::operation_aborted);
    pool.reset();
    CHECK(test_support::code_thrown_by([&] { w.async_call(4, asio::use_future).get(); }) ==
          smartasync::error::pool_stopped);
    CHECK(test_support::code_thrown_by([&] { w(5); }) == asio::error::operation_aborted);
  }
  SECTION("thread-affine lane") {
    auto lane = std::make_unique<smartasync::thread_affine_lane>();
    auto w = smartasync::smart_async(*lane, [](int x) { return x; });
    CHECK(w(1) == 1);
    lane.reset();
    CHECK(test_support::code_thrown_by([&] { w.async_call(2, asio::use_future).get(); }) ==
          smartasync::error::pool_stopped);
    CHECK(test_support::code_thrown_by([&] { w(3); }) == smartasync::error::pool_stopped);
  }
}

TEST_CASE("a lane wrapper is erased as any_smart_async_function<Signature, Lane>",
          "[smart_async][lanes]") {
  smartasync::blocking_pool pool{1};
  smartasync::serial_lane lane{pool};
  smartasync::any_smart_async_function<int(int), smartasync::serial_lane> stored =
      smartasync::smart_async(lane, [](int x) { return x + 1; }, {.name = "stored"});
  CHECK(stored(1) == 2);
  CHECK(stored.async_call(2, asio::use_future).get() == 3);
  CHECK(stored.name() == "stored");
  CHECK(lane.stats().submitted == 2);
  static_assert(std::is_same_v<smartasync::any_smart_async_function<int(int)>,
                               smartasync::smart_async_function<std::function<int(int)>>>);
}
