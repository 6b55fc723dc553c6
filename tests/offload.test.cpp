// Test that the header is self-contained.
#include <smartasync/offload.hpp>

#include "common/test_support.hpp"

#include <smartasync/error.hpp>
#include <smartasync/timeout.hpp>

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(experimental/awaitable_operators.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(strand.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)
#include "common/catch.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using test_support::gate;

namespace {

using test_support::wait_for_stop;

bool is_aborted(const std::exception_ptr& e) {
  return e && test_support::code_of(e) == asio::error::operation_aborted;
}

} // namespace

TEST_CASE("a queued operation cancelled through its slot never runs", "[offload][cancel]") {
  smartasync::blocking_pool pool{1};
  gate release;
  auto busy = smartasync::async_offload(pool, [&] { release.wait(); }, asio::use_future);
  while (pool.stats().running != 1)
    std::this_thread::yield();

  asio::io_context ioc;
  asio::cancellation_signal signal;
  std::atomic<bool> ran{false};
  std::exception_ptr outcome;
  int calls = 0;
  smartasync::async_offload(pool, [&] { ran = true; return 1; },
                            asio::bind_cancellation_slot(signal.slot(),
                                asio::bind_executor(ioc, [&](std::exception_ptr e, int) {
                                  outcome = e;
                                  ++calls;
                                })));
  CHECK(pool.stats().queued == 1);
  signal.emit(asio::cancellation_type::total); // nothing ran yet: even total is honoured
  CHECK(pool.stats().queued == 0);             // removed at once, its slot freed
  ioc.run();
  CHECK(calls == 1);
  CHECK(is_aborted(outcome));
  release.open();
  busy.get();
  pool.shutdown();
  CHECK_FALSE(ran);
  CHECK(pool.stats().cancelled == 1);
  CHECK(pool.stats().completed == 1);
}

TEST_CASE("terminal cancellation of a running call stops it, and completes once it returned",
          "[offload][cancel]") {
  smartasync::blocking_pool pool{1};
  gate started, finish;
  std::atomic<bool> saw_stop{false};
  asio::io_context ioc;
  asio::cancellation_signal signal;
  std::vector<std::string> order;
  std::mutex order_mutex;
  auto note = [&](const char* what) {
    std::lock_guard lock(order_mutex);
    order.push_back(what);
  };
  std::exception_ptr outcome;
  smartasync::async_offload(pool, [&](std::stop_token token) {
        started.open();
        wait_for_stop(token);
        saw_stop = true;
        finish.wait();
        note("returned");
        return 99; // discarded: the caller asked to cancel
      },
      asio::bind_cancellation_slot(signal.slot(),
          asio::bind_executor(ioc, [&](std::exception_ptr e, int) {
            outcome = e;
            note("handler");
          })));
  started.wait();
  signal.emit(asio::cancellation_type::terminal);
  // The handler must not run while the call runs: poll the loop until the call has seen its
  // stop request, then let it return.
  while (!saw_stop)
    ioc.poll();
  ioc.poll();
  CHECK(outcome == nullptr);
  CHECK(pool.stats().running == 1);
  finish.open();
  ioc.run();
  pool.shutdown();
  CHECK(is_aborted(outcome));
  CHECK(order == std::vector<std::string>{"returned", "handler"});
  CHECK(pool.stats().cancelled == 1);
  CHECK(pool.stats().completed == 0);
}

TEST_CASE("with_timeout over a running call that captures a coroutine's locals waits for it",
          "[offload][cancel][lifetime]") {
  // The issue this guards: the natural way to write an offload captures locals by reference;
  // if the timeout completed the coroutine while the call ran, the call would write into a
  // freed frame (ASan: heap-use-after-free).
  test_support::diagnostics_capture reports;
  auto stop_reports = [&] {
    auto all = reports.reports();
    std::erase_if(all, [](const smartasync::diagnostic& d) {
      return d.kind != smartasync::diagnostic_kind::stop_ignored;
    });
    return all;
  };
  smartasync::pool_options options;
  options.threads = 1;
  options.report_ignored_stop_after = 1ms;
  smartasync::blocking_pool pool{options};
  gate started, finish;
  std::atomic<bool> coroutine_done{false};
  std::size_t rows_seen = 0;
  smartasync::error_code code;
  asio::io_context ioc;
  asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
    std::vector<int> rows; // in the coroutine frame
    try {
      co_await smartasync::with_timeout(
          smartasync::async_offload(pool, [&] {
            started.open();
            finish.wait(); // ignores the stop request: it takes no token
            rows.push_back(1);
          }, test_support::deferred),
          // Long enough for the idle worker to start the call before the deadline even on a
          // loaded sanitizer run (a call still queued at it would never start).
          500ms);
    } catch (const smartasync::system_error& e) {
      code = e.code();
    }
    rows_seen = rows.size();
    coroutine_done = true;
  }, asio::detached);
  std::thread loop([&] { ioc.run(); });
  started.wait();
  // The timeout fires and the call ignores its stop request: the pool reports it...
  while (stop_reports().empty())
    std::this_thread::sleep_for(1ms);
  // ...and the coroutine is still suspended, its frame (and `rows`) alive.
  CHECK_FALSE(coroutine_done);
  finish.open();
  loop.join();
  CHECK(coroutine_done);
  CHECK(rows_seen == 1);
  CHECK(code == smartasync::error::timeout);
  const auto first = stop_reports().front();
  CHECK(first.duration >= 1ms);
  CHECK(first.message.find("still running") != std::string::npos);
}

TEST_CASE("abandon_on_cancel completes a running call at once and leaves it running",
          "[offload][cancel]") {
  smartasync::blocking_pool pool{1};
  auto started = std::make_shared<gate>();
  auto finish = std::make_shared<gate>();
  auto returned = std::make_shared<std::atomic<bool>>(false);
  asio::io_context ioc;
  asio::cancellation_signal signal;
  std::exception_ptr outcome;
  bool handled = false;
  // Owns everything it touches (shared_ptr captures), as an abandoned call must.
  smartasync::async_offload(pool, smartasync::abandon_on_cancel([=](std::stop_token) {
        started->open();
        finish->wait();
        *returned = true;
        return 5;
      }),
      asio::bind_cancellation_slot(signal.slot(),
          asio::bind_executor(ioc, [&](std::exception_ptr e, int) {
            outcome = e;
            handled = true;
          })));
  started->wait();
  signal.emit(asio::cancellation_type::terminal);
  ioc.run(); // the handler runs while the call is still blocked
  CHECK(handled);
  CHECK(is_aborted(outcome));
  CHECK_FALSE(*returned);
  finish->open();
  pool.shutdown();
  CHECK(*returned);
  CHECK(pool.stats().cancelled == 1);
  CHECK(pool.stats().completed == 0);
}

TEST_CASE("partial or total cancellation of a running call is ignored", "[offload][cancel]") {
  smartasync::blocking_pool pool{1};
  gate started, finish;
  asio::io_context ioc;
  asio::cancellation_signal signal;
  int result = 0;
  std::exception_ptr outcome;
  smartasync::async_offload(pool, [&] {
        started.open();
        finish.wait();
        return 7;
      },
      asio::bind_cancellation_slot(signal.slot(),
          asio::bind_executor(ioc, [&](std::exception_ptr e, int v) {
            outcome = e;
            result = v;
          })));
  started.wait();
  signal.emit(asio::cancellation_type::partial | asio::cancellation_type::total);
  finish.open();
  ioc.run();
  CHECK_FALSE(outcome);
  CHECK(result == 7);
}

TEST_CASE("awaitable_operators || cancels an offloaded call when the timer wins",
          "[offload][cancel]") {
  using namespace asio::experimental::awaitable_operators;
  smartasync::blocking_pool pool{1};
  asio::io_context ioc;
  std::atomic<bool> ran{false}, stopped{false};
  std::size_t winner = 99;
  asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
    asio::steady_timer timer(ioc, 1ms);
    auto result = co_await (smartasync::async_offload(pool, [&](std::stop_token token) {
                              ran = true;
                              wait_for_stop(token); // never finishes on its own
                              stopped = true;
                              return 1;
                            }) ||
                            timer.async_wait(asio::use_awaitable));
    winner = result.index();
  }, asio::detached);
  ioc.run();
  pool.shutdown();
  CHECK(winner == 1);
  // Depending on when the timer fired the call was still queued (removed, never ran) or
  // running (asked to stop); either way it was cancelled exactly once.
  CHECK(ran == stopped);
  CHECK(pool.stats().cancelled == 1);
  CHECK(pool.stats().completed == 0);
}

TEST_CASE("an operation keeps io_context::run from returning until it completes",
          "[offload][lifetime]") {
  smartasync::blocking_pool pool{1};
  gate release;
  asio::io_context ioc;
  bool done = false;
  smartasync::async_offload(pool, [&] { release.wait(); },
                            asio::bind_executor(ioc, [&](std::exception_ptr) { done = true; }));
  std::thread opener([&] { release.open(); });
  ioc.run(); // returns only after the completion ran
  opener.join();
  CHECK(done);
}

TEST_CASE("an io_context destroyed while its operation runs is never touched again",
          "[offload][lifetime]") {
  smartasync::blocking_pool pool{1};
  gate started, release;
  auto witness = std::make_shared<int>(0);
  bool invoked = false;
  {
    asio::io_context ioc;
    smartasync::async_offload(pool, [&] {
          started.open();
          release.wait();
          return 1;
        },
        asio::bind_executor(ioc, [&invoked, witness](std::exception_ptr, int) { invoked = true; }));
    started.wait();
    CHECK(witness.use_count() == 2); // the handler holds a copy
  } // ioc destroyed: the handler is abandoned, like Asio's own pending operations
  CHECK(witness.use_count() == 1);
  release.open();
  pool.shutdown(); // the late completion finds its context gone and is discarded
  CHECK_FALSE(invoked);
  CHECK(pool.stats().completed == 1);
}

TEST_CASE("an operation whose io_context died releases its callable, though its signal lives on",
          "[offload][lifetime][cancel]") {
  // The caller's cancellation_signal outlives the io_context (a member of a longer-lived
  // object). The operation's cancellation handler in it must not keep the operation, and so
  // its callable and what that owns, alive once the context is gone: not when the context
  // abandoned the running call, nor when the completion died queued in the context.
  const bool finished_first = GENERATE(false, true);
  const bool through_strand = GENERATE(false, true);
  smartasync::blocking_pool pool{1};
  asio::cancellation_signal signal;
  auto owned = std::make_shared<int>(3);
  const std::weak_ptr<int> watch = owned;
  gate started, release;
  {
    asio::io_context ioc;
    auto work = [&started, &release, owned = std::move(owned)] {
      started.open();
      release.wait();
      return *owned;
    };
    auto handler = [](std::exception_ptr, int) {};
    if (through_strand)
      smartasync::async_offload(pool, std::move(work),
                                asio::bind_cancellation_slot(
                                    signal.slot(), asio::bind_executor(asio::make_strand(ioc), handler)));
    else
      smartasync::async_offload(pool, std::move(work),
                                asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(ioc, handler)));
    started.wait();
    if (finished_first) {
      release.open();
      pool.shutdown(); // the completion is queued in the context, which never runs it
    }
  } // ioc destroyed
  release.open();
  pool.shutdown(); // the call has returned, and its worker is done with it
  CHECK(watch.expired());
}

TEST_CASE("a stopped io_context with a suspended coroutine can be destroyed safely",
          "[offload][lifetime]") {
  smartasync::blocking_pool pool{1};
  gate started, release;
  bool resumed = false;
  {
    asio::io_context ioc;
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
      co_await smartasync::async_offload(pool, [&] {
        started.open();
        release.wait();
      });
      resumed = true;
    }, asio::detached);
    std::thread runner([&] { ioc.run(); });
    started.wait();
    ioc.stop();
    runner.join();
  }
  release.open();
  pool.shutdown();
  CHECK_FALSE(resumed);
}

TEST_CASE("every one of many offloads from many coroutines completes exactly once",
          "[offload][stress]") {
  const char* env = std::getenv("SMARTASYNC_STRESS_OPS");
  const int total = env ? std::atoi(env) : 100000;
  constexpr int coroutines = 64;
  smartasync::blocking_pool pool{2, 256};
  asio::io_context ioc;
  std::vector<std::atomic<int>> hits(static_cast<std::size_t>(total));
  std::atomic<long long> sum{0};
  for (int c = 0; c < coroutines; ++c)
    asio::co_spawn(ioc, [&, c]() -> asio::awaitable<void> {
      for (int i = c; i < total; i += coroutines) {
        int v = co_await smartasync::async_offload(pool, [i] { return i; });
        hits[static_cast<std::size_t>(v)].fetch_add(1, std::memory_order_relaxed);
        sum += v;
      }
    }, asio::detached);
  std::thread second([&] { ioc.run(); });
  ioc.run();
  second.join();
  int exactly_once = 0;
  for (auto& h : hits)
    exactly_once += h.load() == 1;
  CHECK(exactly_once == total);
  CHECK(sum == static_cast<long long>(total) * (total - 1) / 2);
  auto stats = pool.stats();
  CHECK(stats.submitted == static_cast<std::uint64_t>(total));
  CHECK(stats.completed == static_cast<std::uint64_t>(total));
}

// Completions into a plain io_context run by one thread are batched: a worker posts one drain
// per batch, not one handler per completion (detail/completion_service.hpp). io_context::run()
// returns how many handlers it ran, which shows the batching from outside.
namespace {

// Offloads `count` calls into `ioc` (not running) and waits until the pool has handed every
// completion over; `on_complete(i)` runs for call i.
template <typename OnComplete>
void offload_and_join(std::size_t count, asio::io_context& ioc, OnComplete on_complete) {
  smartasync::blocking_pool pool{1};
  for (std::size_t i = 0; i < count; ++i)
    smartasync::async_offload(pool, [i] { return i; },
                              asio::bind_executor(ioc, [on_complete](std::exception_ptr e,
                                                                     std::size_t value) {
                                REQUIRE_FALSE(e);
                                on_complete(value);
                              }));
  pool.shutdown(smartasync::shutdown_mode::drain); // joins: every completion is handed over
}

} // namespace

TEST_CASE("completions that finish together run in one handler, in the order they finished",
          "[offload][batch]") {
  asio::io_context ioc;
  std::vector<std::size_t> order;
  offload_and_join(8, ioc, [&](std::size_t i) { order.push_back(i); });
  CHECK(order.empty());   // nothing runs before the loop does
  CHECK(ioc.run() == 1);  // one drain ran all eight
  CHECK(order == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("a completion handler that throws leaves run(), and the rest of its batch still runs",
          "[offload][batch]") {
  asio::io_context ioc;
  std::vector<std::size_t> order;
  offload_and_join(4, ioc, [&](std::size_t i) {
    order.push_back(i);
    if (i == 1)
      throw std::runtime_error("handler 1");
  });
  CHECK_THROWS_WITH(ioc.run(), "handler 1");
  CHECK(order == std::vector<std::size_t>{0, 1});
  ioc.restart();
  CHECK(ioc.run() == 2); // the two left over, posted one by one
  CHECK(order == std::vector<std::size_t>{0, 1, 2, 3});
}

TEST_CASE("an io_context destroyed with undrained completions destroys their handlers unrun",
          "[offload][batch][lifetime]") {
  auto witness = std::make_shared<int>(0);
  int invoked = 0;
  {
    asio::io_context ioc;
    offload_and_join(3, ioc, [&invoked, witness](std::size_t) { ++invoked; });
    CHECK(witness.use_count() > 1);
  }
  CHECK(witness.use_count() == 1);
  CHECK(invoked == 0);
}

TEST_CASE("a context whose completions run on several threads stops batching them",
          "[offload][batch]") {
  asio::io_context ioc;
  int invoked = 0;
  auto count = [&](std::size_t) { ++invoked; };
  offload_and_join(2, ioc, count);
  CHECK(ioc.run() == 1);
  offload_and_join(2, ioc, count);
  ioc.restart();
  std::thread([&] { CHECK(ioc.run() == 1); }).join(); // a second thread: no more batching
  offload_and_join(3, ioc, count);
  ioc.restart();
  CHECK(ioc.run() == 3); // one handler per completion, free to spread over threads
  CHECK(invoked == 7);
}

TEST_CASE("a context that stops batching still runs until every completion it is owed arrived",
          "[offload][batch][lifetime]") {
  asio::io_context ioc;
  offload_and_join(1, ioc, [](std::size_t) {});
  ioc.run();
  offload_and_join(1, ioc, [](std::size_t) {});
  ioc.restart();
  std::thread([&] { ioc.run(); }).join(); // drains on two threads: completions are posted now

  // Each completion is handed over while the work it counted in is still held: were it given
  // back first, run() could find no work left and return before the last completion arrived.
  smartasync::blocking_pool pool{1};
  for (int round = 0; round < 200; ++round) {
    int invoked = 0;
    ioc.restart();
    for (int i = 0; i < 3; ++i)
      smartasync::async_offload(pool, [] {}, asio::bind_executor(ioc, [&](std::exception_ptr e) {
                                  REQUIRE_FALSE(e);
                                  ++invoked;
                                }));
    ioc.run();
    REQUIRE(invoked == 3);
  }
}

TEST_CASE("operations running or queued when their io_context dies are discarded when they end",
          "[offload][lifetime]") {
  smartasync::blocking_pool pool{1};
  gate started, release;
  auto witness = std::make_shared<int>(0);
  int invoked = 0;
  {
    asio::io_context ioc;
    auto handler = asio::bind_executor(ioc, [&invoked, witness](std::exception_ptr) { ++invoked; });
    smartasync::async_offload(pool, [&] {
          started.open();
          release.wait();
        },
        handler);
    smartasync::async_offload(pool, [] {}, handler); // queued behind the first
    started.wait();
  } // both are abandoned; the context's bookkeeping must outlive them (ASan checks)
  CHECK(witness.use_count() == 1); // both handlers were destroyed unrun
  release.open();
  pool.shutdown(smartasync::shutdown_mode::drain); // both finish with their context gone
  CHECK(invoked == 0);
  CHECK(pool.stats().completed == 2);
}

namespace {
// A result of 1 MiB: a handful of copies of it overflow a thread's stack.
struct big_result {
  std::array<unsigned char, 1 << 20> bytes{};
};

big_result make_big_result() {
  big_result r;
  r.bytes.fill(7);
  r.bytes.back() = 42;
  return r;
}

// Counts its moves; its move constructor throws while `fail` is set (the shape of a result
// whose move allocates, or that can only be copied).
struct throwing_move {
  static inline std::atomic<bool> fail{false};
  static inline std::atomic<int> moves{0};
  int value = 0;
  throwing_move() = default;
  explicit throwing_move(int v) : value(v) {}
  throwing_move(throwing_move&& other) : value(other.value) {
    if (fail)
      throw std::runtime_error("the result's move failed");
    ++moves;
  }
  throwing_move& operator=(throwing_move&&) = default;
};
} // namespace

TEST_CASE("a 1 MiB result reaches a coroutine, a future and a callback intact",
          "[offload][result]") {
  smartasync::blocking_pool pool{1, 4};

  asio::io_context ioc;
  std::atomic<int> last{0};
  test_support::run(ioc, [&]() -> asio::awaitable<void> {
    auto r = co_await smartasync::async_offload(pool, make_big_result, asio::use_awaitable);
    last = r.bytes.back() + r.bytes.front();
  }());
  CHECK(last == 42 + 7);

  auto future = smartasync::async_offload(pool, make_big_result, asio::use_future);
  auto from_future = std::make_unique<big_result>(future.get());
  CHECK(from_future->bytes.back() == 42);

  std::promise<int> seen;
  smartasync::async_offload(pool, make_big_result, [&](std::exception_ptr e, big_result r) {
    seen.set_value(e ? -1 : r.bytes.back() + r.bytes.front());
  });
  CHECK(seen.get_future().get() == 42 + 7);
}

TEST_CASE("a result whose move throws is delivered as the operation's exception",
          "[offload][result]") {
  smartasync::blocking_pool pool{1, 4};
  auto make = [] { return throwing_move{7}; };
  throwing_move::fail = true;

  asio::io_context ioc;
  std::string thrown;
  test_support::run(ioc, [&]() -> asio::awaitable<void> {
    try {
      co_await smartasync::async_offload(pool, make, asio::use_awaitable);
    } catch (const std::runtime_error& e) {
      thrown = e.what();
    }
  }());
  CHECK(thrown == "the result's move failed");

  auto future = smartasync::async_offload(pool, make, asio::use_future);
  CHECK_THROWS_WITH(future.get(), "the result's move failed");
  throwing_move::fail = false;
  CHECK(pool.stats().completed == 2); // the call itself succeeded both times
}

TEST_CASE("a result whose move may throw is moved at most twice on its way to the handler",
          "[offload][result]") {
  smartasync::blocking_pool pool{1, 4};
  throwing_move::fail = false;
  throwing_move::moves = 0;
  std::promise<int> seen;
  smartasync::async_offload(pool, [] { return throwing_move{7}; },
                            [&](std::exception_ptr e, throwing_move r) {
                              seen.set_value(e ? -1 : r.value);
                            });
  CHECK(seen.get_future().get() == 7);
  CHECK(throwing_move::moves <= 2);
}
