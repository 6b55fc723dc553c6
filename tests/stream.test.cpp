// Test that the header is self-contained.
#include "smartasync/stream.hpp"

#include "smartasync/blocking_context.hpp"

#include "common/catch.hpp"

#include "common/asio_flavour.hpp"
#include "common/test_support.hpp"

#include SMARTASYNC_ASIO_HEADER(any_io_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(executor_work_guard.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(this_coro.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)
#include SMARTASYNC_ASIO_HEADER(experimental/awaitable_operators.hpp)
#include SMARTASYNC_ASIO_HEADER(experimental/concurrent_channel.hpp)

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <string>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using smartasync::stream_writer;
using smartasync::sync_stream;

namespace {

asio::awaitable<int> answer() { co_return 42; }

asio::awaitable<void> emit_one(stream_writer<int> out, int v) { co_await out.emit(v); }

asio::awaitable<void> noop() { co_return; }

asio::awaitable<void> ticket_and_emit(stream_writer<int> out, int v, std::vector<int>& tickets) {
  tickets.push_back(v);
  co_await out.emit(v);
}

// Emits 0, 1, 2, ... until refused; records how that ended (1: operation_aborted).
asio::awaitable<void> emit_forever(stream_writer<int> out, std::atomic<int>& outcome) {
  try {
    for (int i = 0;; ++i)
      co_await out.emit(i);
  } catch (const smartasync::system_error& e) {
    outcome = e.code() == asio::error::operation_aborted ? 1 : 2;
  } catch (...) {
    outcome = 2;
  }
}

// Records how its emit ended: 1 refused with operation_aborted, 2 accepted, 3 anything else.
asio::awaitable<void> emit_and_report(stream_writer<int> out, int v, std::atomic<int>& result) {
  try {
    co_await out.emit(v);
    result = 2;
  } catch (const smartasync::system_error& e) {
    result = e.code() == asio::error::operation_aborted ? 1 : 3;
  } catch (...) {
    result = 3;
  }
}

// An io_context run by a thread of its own until the object is destroyed.
class loop_thread {
public:
  loop_thread() : guard_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  loop_thread(const loop_thread&) = delete;
  loop_thread& operator=(const loop_thread&) = delete;
  ~loop_thread() {
    guard_.reset(); // run() returns once the coroutines spawned on it have finished
    thread_.join();
  }
  asio::io_context& io() { return io_; }
  std::thread::id id() const { return thread_.get_id(); }

private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

// Every emit says who made it, in which order, on which thread.
struct tagged {
  int emitter;
  int seq;
  std::thread::id thread;
};

asio::awaitable<void> emit_tagged(stream_writer<tagged> out, int emitter, int count) {
  for (int i = 0; i < count; ++i)
    co_await out.emit(tagged{emitter, i, std::this_thread::get_id()});
}

asio::awaitable<std::vector<tagged>> consume_all(sync_stream<tagged>& stream,
                                                 std::thread::id& consumer_thread) {
  std::vector<tagged> got;
  while (auto item = co_await stream.async_next()) {
    consumer_thread = std::this_thread::get_id();
    got.push_back(*item);
  }
  co_return got;
}

// Waits on its own loop until `go`, then emits `first` and `first + 1`.
asio::awaitable<void> emit_when(stream_writer<int> out, std::atomic<bool>& go, int first) {
  auto ex = co_await asio::this_coro::executor;
  while (!go)
    co_await asio::post(ex, asio::use_awaitable);
  co_await out.emit(first);
  co_await out.emit(first + 1);
}

asio::awaitable<std::vector<int>> consume_owned(sync_stream<int> stream) {
  std::vector<int> got;
  while (auto item = co_await stream.async_next())
    got.push_back(*item);
  co_return got;
}

// Runs on another thread: records instead of CHECKing (Catch2's assertions are not thread-safe).
asio::awaitable<void> hold_and_wait(sync_stream<int> stream, std::atomic<int>& first) {
  first = co_await stream.async_next() == 1 ? 1 : 2;
  co_await stream.async_next(); // the producer never emits again
}

// A producer's body that never ends by itself: parks on an hour-long timer (setting `parked`
// first), for the tests of what ends a stream from outside.
asio::awaitable<void> park_for_an_hour(std::atomic<bool>* parked = nullptr) {
  asio::steady_timer never(co_await asio::this_coro::executor, std::chrono::hours(1));
  if (parked)
    *parked = true;
  co_await never.async_wait(asio::use_awaitable);
}

} // namespace

TEST_CASE("sync_stream delivers every item in order, produced on another thread", "[stream]") {
  std::atomic<std::thread::id> producer_thread;
  sync_stream<int> numbers(2, [&](stream_writer<int> out) -> asio::awaitable<void> {
    producer_thread = std::this_thread::get_id();
    for (int i = 0; i < 10; ++i)
      co_await out.emit(i);
  });
  std::vector<int> seen;
  for (int n : numbers)
    seen.push_back(n);
  CHECK(seen == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(producer_thread.load() != std::this_thread::get_id());
  CHECK_FALSE(numbers.next().has_value()); // finished stays finished
}

TEST_CASE("sync_stream applies back-pressure without blocking the producer's loop",
          "[stream]") {
  constexpr std::size_t capacity = 3;
  std::atomic<std::size_t> emitted{0};
  sync_stream<std::size_t> items(capacity, [&](stream_writer<std::size_t> out) -> asio::awaitable<void> {
    for (std::size_t i = 0; i < 50; ++i) {
      co_await out.emit(i);
      ++emitted;
    }
  });
  std::size_t consumed = 0;
  std::size_t worst_lead = 0;
  for (std::size_t i : items) {
    CHECK(i == consumed);
    ++consumed;
    if (consumed % 10 == 0) {
      std::this_thread::sleep_for(2ms); // let the producer fill the buffer
      // The loop the producer runs on is free: another coroutine completes on it meanwhile.
      CHECK(smartasync::block_on(answer()) == 42);
    }
    // One read: the producer may count another item between two, and the difference of
    // unsigned reads taken at different moments can wrap.
    const std::size_t emitted_now = emitted.load();
    worst_lead = std::max(worst_lead, emitted_now > consumed ? emitted_now - consumed : 0);
  }
  CHECK(consumed == 50);
  // The producer never got more than `capacity` items ahead of the consumer.
  CHECK(worst_lead <= capacity);
}

TEST_CASE("breaking out of the loop cancels the producer at its next emit", "[stream]") {
  std::atomic<bool> producer_saw_abort{false};
  std::atomic<bool> producer_finished{false};
  {
    sync_stream<int> endless(1, [&](stream_writer<int> out) -> asio::awaitable<void> {
      try {
        for (int i = 0;; ++i)
          co_await out.emit(i);
      } catch (const smartasync::system_error& e) {
        producer_saw_abort = e.code() == asio::error::operation_aborted;
      }
      producer_finished = true;
    });
    int taken = 0;
    for (int n : endless) {
      CHECK(n == taken);
      if (++taken == 3)
        break;
    }
    CHECK(taken == 3);
  } // the destructor waited for the producer
  CHECK(producer_finished);
  CHECK(producer_saw_abort);
}

TEST_CASE("destroying the stream cancels what the producer is awaiting", "[stream]") {
  std::atomic<bool> timer_aborted{false};
  {
    sync_stream<int> slow(4, [&](stream_writer<int> out) -> asio::awaitable<void> {
      co_await out.emit(1);
      asio::steady_timer timer(co_await asio::this_coro::executor, 1h);
      try {
        co_await timer.async_wait(asio::use_awaitable);
      } catch (const smartasync::system_error& e) {
        timer_aborted = e.code() == asio::error::operation_aborted;
        throw;
      }
      co_await out.emit(2);
    });
    CHECK(slow.next() == 1);
  } // would take an hour if the timer were not cancelled
  CHECK(timer_aborted);
}

TEST_CASE("the producer's exception reaches the consumer after its items", "[stream]") {
  sync_stream<std::string> words(8, [](stream_writer<std::string> out) -> asio::awaitable<void> {
    co_await out.emit("a");
    co_await out.emit("b");
    throw std::runtime_error("disk on fire");
  });
  std::vector<std::string> seen;
  CHECK_THROWS_WITH(
      [&] {
        for (const auto& w : words)
          seen.push_back(w);
      }(),
      "disk on fire");
  CHECK(seen == std::vector<std::string>{"a", "b"});
}

TEST_CASE("a producer that throws before returning its awaitable fails the stream", "[stream]") {
  sync_stream<int> broken(1, [](stream_writer<int>) -> asio::awaitable<void> {
    throw std::runtime_error("no cursor");
  });
  CHECK_THROWS_WITH(broken.next(), "no cursor");
  CHECK_FALSE(broken.next());
}

TEST_CASE("sync_stream runs its producer on a caller-provided executor", "[stream]") {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  const auto runner_id = runner.get_id();
  std::atomic<std::thread::id> producer_thread;
  {
    sync_stream<int> numbers(io.get_executor(), 1,
                             [&](stream_writer<int> out) -> asio::awaitable<void> {
                               producer_thread = std::this_thread::get_id();
                               co_await out.emit(7);
                               co_await out.emit(8);
                             });
    CHECK(numbers.next() == 7);
    CHECK(numbers.next() == 8);
    CHECK_FALSE(numbers.next());
  }
  guard.reset();
  runner.join();
  CHECK(producer_thread.load() == runner_id);
}

TEST_CASE("creating a sync_stream on its producer's loop throws deadlock", "[stream][misuse]") {
  auto body = []() -> asio::awaitable<smartasync::error_code> {
    try {
      sync_stream<int> s(1, [](stream_writer<int> out) -> asio::awaitable<void> {
        co_await out.emit(1);
      });
    } catch (const smartasync::system_error& e) {
      co_return e.code();
    }
    co_return smartasync::error_code{};
  };
  CHECK(smartasync::block_on(body()) == smartasync::error::deadlock);
  CHECK_THROWS_AS(sync_stream<int>(0, [](stream_writer<int>) -> asio::awaitable<void> { co_return; }),
                  std::invalid_argument);
}

TEST_CASE("two coroutines emitting at once into a full buffer both get through",
          "[stream][emitters]") {
  // Capacity 1 and no consumer read until both could have parked on the full buffer: once an
  // error (one emitter slot), now both wait their turn.
  auto events = sync_stream<int>(1, [](stream_writer<int> out) -> asio::awaitable<void> {
    co_await out.emit(0); // fills the buffer
    asio::co_spawn(co_await asio::this_coro::executor, emit_one(out, 2), asio::detached);
    co_await out.emit(1);
  });
  std::vector<int> seen;
  for (int v : events)
    seen.push_back(v);
  REQUIRE(seen.size() == 3);
  CHECK(seen[0] == 0);
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<int>{0, 1, 2});
}

TEST_CASE("next() wakes with operation_aborted when the producer's io_context is destroyed",
          "[stream][lifetime]") {
  std::optional<sync_stream<int>> stream;
  std::future<smartasync::error_code> consumer;
  {
    asio::io_context io;
    auto guard = asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    std::atomic<bool> suspended{false};
    stream.emplace(asio::any_io_executor(io.get_executor()), 4,
                   [&](stream_writer<int>) -> asio::awaitable<void> {
                     co_await park_for_an_hour(&suspended);
                   });
    consumer = std::async(std::launch::async, [&] {
      try {
        stream->next();
      } catch (const smartasync::system_error& e) {
        return e.code();
      }
      return smartasync::error_code{};
    });
    while (!suspended)
      std::this_thread::yield();
    guard.reset();
    io.stop();
    runner.join();
  } // ~io_context destroys the suspended producer
  CHECK(consumer.get() == asio::error::operation_aborted);
  CHECK_FALSE(stream->next()); // the stream now reads as finished
  stream.reset(); // and outlives the context safely (ASan checks the strand and channel)
}

TEST_CASE("several emitters on different threads feed a coroutine consumer: each item once, in "
          "each emitter's order",
          "[stream][emitters][async]") {
  constexpr int emitters = 3;
  constexpr int per_emitter = 200;
  std::array<loop_thread, emitters> loops;
  // Capacity 2 with three emitters: most emits find the buffer full and queue for space.
  sync_stream<tagged> stream(2, [&](stream_writer<tagged> out) -> asio::awaitable<void> {
    for (int e = 0; e < emitters; ++e)
      asio::co_spawn(loops[e].io(), emit_tagged(out, e, per_emitter), asio::detached);
    co_return; // the stream stays open while the emitters hold their writers
  });
  asio::io_context consumer_io;
  std::thread::id consumer_thread;
  const std::vector<tagged> got = test_support::run(consumer_io, consume_all(stream, consumer_thread));

  REQUIRE(got.size() == std::size_t{emitters} * per_emitter);
  std::array<int, emitters> next_seq{};
  int out_of_order = 0;
  int wrong_thread = 0;
  for (const tagged& t : got) {
    REQUIRE((t.emitter >= 0 && t.emitter < emitters));
    if (t.seq != next_seq[t.emitter]) // a duplicate, a gap or a swap
      ++out_of_order;
    next_seq[t.emitter] = t.seq + 1;
    if (t.thread != loops[t.emitter].id())
      ++wrong_thread;
  }
  CHECK(out_of_order == 0);
  CHECK(wrong_thread == 0);
  CHECK(next_seq == std::array<int, emitters>{per_emitter, per_emitter, per_emitter});
  // The consumer resumed on its own loop's thread, none of the emitters'.
  CHECK(consumer_thread == std::this_thread::get_id());
  for (const loop_thread& l : loops)
    CHECK(l.id() != consumer_thread);
}

TEST_CASE("the stream ends when the producer has returned and every writer is gone",
          "[stream][emitters]") {
  loop_thread late;
  std::atomic<bool> spawned{false};
  std::atomic<bool> go{false};
  sync_stream<int> stream(4, [&](stream_writer<int> out) -> asio::awaitable<void> {
    co_await out.emit(1);
    asio::co_spawn(late.io(), emit_when(out, go, 2), asio::detached);
    spawned = true;
  });
  CHECK(stream.next() == 1);
  while (!spawned)
    std::this_thread::yield();
  // The background loop is one thread: once it has run this, the producer's return (queued
  // before it) has been handled, and only the late emitter keeps the stream open.
  smartasync::block_on(noop());
  go = true;
  CHECK(stream.next() == 2);
  CHECK(stream.next() == 3);
  CHECK_FALSE(stream.next());
}

TEST_CASE("emitters waiting on a full buffer are served first come, first served",
          "[stream][emitters]") {
  // Every emitter runs on the producer's strand and takes a ticket just before it emits (in
  // the same handler, so ticket order is the order in which emits reach the buffer). With
  // capacity 1 nearly every emit waits; the items must come out in ticket order, also while
  // the consumer frees slots concurrently (a newcomer may not take a slot promised to a
  // waiter).
  std::vector<int> tickets; // touched on the producer's strand only, until the stream ended
  sync_stream<int> stream(1, [&](stream_writer<int> out) -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    for (int k = 1; k <= 20; ++k)
      asio::co_spawn(ex, ticket_and_emit(out, k, tickets), asio::detached);
    co_await ticket_and_emit(out, 0, tickets);
  });
  std::vector<int> seen;
  for (int v : stream)
    seen.push_back(v);
  CHECK(seen.size() == 21);
  CHECK(seen == tickets);
}

TEST_CASE("breaking out of the loop stops emitters that outlive the producer",
          "[stream][emitters]") {
  loop_thread other_loop;
  std::atomic<int> outcome{0}; // 1: its emit was refused with operation_aborted
  {
    sync_stream<int> stream(1, [&](stream_writer<int> out) -> asio::awaitable<void> {
      asio::co_spawn(other_loop.io(), emit_forever(out, outcome), asio::detached);
      co_return;
    });
    int taken = 0;
    for (int n : stream) {
      CHECK(n == taken);
      if (++taken == 3)
        break;
    }
  }
  while (outcome == 0) // a hang here: the emitter was left parked on a full buffer
    std::this_thread::yield();
  CHECK(outcome == 1);
}

TEST_CASE("a failing producer ends the stream for every emitter, after the buffered items",
          "[stream][emitters]") {
  std::atomic<int> other{0}; // 1: its emit was refused, 2: accepted
  sync_stream<int> stream(1, [&](stream_writer<int> out) -> asio::awaitable<void> {
    co_await out.emit(1); // fills the buffer
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(ex, emit_and_report(out, 2, other), asio::detached);
    throw std::runtime_error("disk on fire");
  });
  std::vector<int> seen;
  std::string error;
  try {
    while (auto v = stream.next())
      seen.push_back(*v);
  } catch (const std::exception& e) {
    error = e.what();
  }
  CHECK(error == "disk on fire");
  CHECK_FALSE(stream.next()); // reported once
  while (other == 0)
    std::this_thread::yield();
  // The other emitter's item either made it into the buffer before the failure (and came out
  // before the error) or was refused with operation_aborted: never accepted and then dropped.
  if (other == 2)
    CHECK(seen == std::vector<int>{1, 2});
  else
    CHECK((other == 1 && seen == std::vector<int>{1}));
}

TEST_CASE("async_next works with a callback, use_future and deferred", "[stream][async]") {
  sync_stream<int> stream(4, [](stream_writer<int> out) -> asio::awaitable<void> {
    for (int i = 1; i <= 3; ++i)
      co_await out.emit(i);
  });
  std::future<std::optional<int>> first = stream.async_next(asio::use_future);
  CHECK(first.get() == 1);

  std::promise<std::optional<int>> second;
  auto deferred_next = stream.async_next(test_support::deferred);
  std::move(deferred_next)([&](std::exception_ptr e, std::optional<int> v) {
    if (e)
      second.set_exception(e);
    else
      second.set_value(v);
  });
  CHECK(second.get_future().get() == 2);

  asio::io_context io;
  std::optional<int> third;
  std::thread::id callback_thread;
  stream.async_next(asio::bind_executor(io, [&](std::exception_ptr, std::optional<int> v) {
    third = v;
    callback_thread = std::this_thread::get_id();
  }));
  CHECK_FALSE(third); // whether or not item 3 is there yet: never completed inside the call
  io.run();
  CHECK(third == 3);
  CHECK(callback_thread == std::this_thread::get_id()); // on its executor, never inline

  CHECK(stream.async_next(asio::use_future).get() == std::nullopt);
  CHECK(stream.async_next(asio::use_future).get() == std::nullopt); // finished stays finished
}

TEST_CASE("a cancelled async_next consumes nothing, also when its item had already arrived",
          "[stream][async][cancellation]") {
  // The producer waits for `go`, so the test decides when items exist.
  asio::experimental::concurrent_channel<void(smartasync::error_code, int)> go(
      smartasync::background_executor(), 1);
  std::atomic<int> emitted{0};
  sync_stream<int> stream(4, [&](stream_writer<int> out) -> asio::awaitable<void> {
    co_await go.async_receive(asio::use_awaitable);
    for (int i = 1; i <= 3; ++i) {
      co_await out.emit(i);
      ++emitted;
    }
  });
  // The consumer's loop runs on this thread only when the test runs it, so a wait can be
  // cancelled after its wake-up is queued there but before it has run.
  asio::io_context consumer_io;
  asio::cancellation_signal cancel;
  struct outcome {
    bool done = false;
    std::exception_ptr error;
    std::optional<int> item;
  };
  auto next_into = [&](outcome& o) {
    stream.async_next(asio::bind_cancellation_slot(
        cancel.slot(),
        asio::bind_executor(consumer_io, [&o](std::exception_ptr e, std::optional<int> v) {
          o = outcome{true, e, v};
        })));
  };

  // 1. Cancelled while nothing has arrived.
  outcome empty_wait;
  next_into(empty_wait);
  consumer_io.poll();
  CHECK_FALSE(empty_wait.done);
  cancel.emit(asio::cancellation_type::terminal);
  consumer_io.run();
  consumer_io.restart();
  CHECK(empty_wait.done);
  CHECK(test_support::code_of(empty_wait.error) == asio::error::operation_aborted);
  CHECK_FALSE(empty_wait.item);

  // 2. Cancelled after item 1 arrived and woke it, before its completion ran (the loser of
  //    an awaitable `||` is in this position).
  outcome woken_wait;
  next_into(woken_wait);
  go.try_send(smartasync::error_code{}, 0);
  while (emitted == 0)
    std::this_thread::yield();
  cancel.emit(asio::cancellation_type::terminal);
  consumer_io.run();
  CHECK(woken_wait.done);
  CHECK(test_support::code_of(woken_wait.error) == asio::error::operation_aborted);
  CHECK_FALSE(woken_wait.item);

  // Nothing lost, nothing reordered, and the stream itself was not cancelled.
  CHECK(stream.next() == 1);
  CHECK(stream.next() == 2);
  CHECK(stream.next() == 3);
  CHECK_FALSE(stream.next());
}

TEST_CASE("async_next raced against a timer with || loses no item", "[stream][async][cancellation]") {
  constexpr int count = 100;
  sync_stream<int> stream(2, [](stream_writer<int> out) -> asio::awaitable<void> {
    for (int i = 0; i < count; ++i)
      co_await out.emit(i);
  });
  auto consume = [&stream]() -> asio::awaitable<std::vector<int>> {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    std::vector<int> got;
    for (;;) {
      timer.expires_after(std::chrono::seconds(0)); // already due: the race is real
      auto r = co_await (stream.async_next() || timer.async_wait(asio::use_awaitable));
      if (r.index() == 0) {
        auto item = std::get<0>(r);
        if (!item)
          break;
        got.push_back(*item);
      }
    }
    co_return got;
  };
  const std::vector<int> got = test_support::run(consume());
  std::vector<int> expected(count);
  for (int i = 0; i < count; ++i)
    expected[i] = i;
  CHECK(got == expected);
}

TEST_CASE("a moved stream carries on, and the moved-from one is empty and reads as finished",
          "[stream][move]") {
  static_assert(std::is_nothrow_move_constructible_v<sync_stream<int>>);
  static_assert(std::is_nothrow_move_assignable_v<sync_stream<int>>);
  static_assert(!std::is_copy_constructible_v<sync_stream<int>>);
  sync_stream<int> first(2, [](stream_writer<int> out) -> asio::awaitable<void> {
    for (int i = 0; i < 10; ++i)
      co_await out.emit(i);
  });
  CHECK(first.next() == 0);
  sync_stream<int> second(std::move(first));
  CHECK(second.valid());
  CHECK_FALSE(first.valid()); // NOLINT(bugprone-use-after-move): the documented empty state
  CHECK_FALSE(first.next());
  CHECK(first.begin() == first.end());
  first.cancel(); // does nothing
  CHECK(first.async_next(asio::use_future).get() == std::nullopt);
  std::vector<int> rest;
  for (int v : second)
    rest.push_back(v);
  CHECK(rest == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("move-assigning over a running stream stops its producer and waits for it",
          "[stream][move]") {
  std::atomic<bool> old_finished{false};
  sync_stream<int> stream(1, [&](stream_writer<int> out) -> asio::awaitable<void> {
    try {
      for (int i = 0;; ++i)
        co_await out.emit(i);
    } catch (const smartasync::system_error&) {
    }
    old_finished = true;
  });
  CHECK(stream.next() == 0);
  stream = sync_stream<int>(1, [](stream_writer<int> out) -> asio::awaitable<void> {
    co_await out.emit(7);
  });
  CHECK(old_finished); // the assignment waited for the old producer
  CHECK(stream.next() == 7);
  CHECK_FALSE(stream.next());
}

TEST_CASE("a stream moved into a coroutine on another loop is consumed there", "[stream][move]") {
  sync_stream<int> stream(2, [](stream_writer<int> out) -> asio::awaitable<void> {
    for (int i = 0; i < 5; ++i)
      co_await out.emit(i);
  });
  CHECK(stream.next() == 0);
  const std::vector<int> got = test_support::run(consume_owned(std::move(stream)));
  CHECK(got == std::vector<int>{1, 2, 3, 4});
  CHECK_FALSE(stream.valid()); // NOLINT(bugprone-use-after-move)
}

TEST_CASE("async_next completes with operation_aborted when the producer's io_context is "
          "destroyed",
          "[stream][lifetime][async]") {
  std::optional<sync_stream<int>> stream;
  asio::io_context consumer_io;
  bool done = false;
  std::exception_ptr error;
  {
    asio::io_context io;
    auto guard = asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    std::atomic<bool> suspended{false};
    stream.emplace(asio::any_io_executor(io.get_executor()), 4,
                   [&](stream_writer<int>) -> asio::awaitable<void> {
                     co_await park_for_an_hour(&suspended);
                   });
    while (!suspended)
      std::this_thread::yield();
    stream->async_next(asio::bind_executor(consumer_io, [&](std::exception_ptr e, std::optional<int>) {
      error = e;
      done = true;
    }));
    guard.reset();
    io.stop();
    runner.join();
  } // ~io_context destroys the suspended producer
  consumer_io.run();
  CHECK(done);
  CHECK(test_support::code_of(error) == asio::error::operation_aborted);
  CHECK_FALSE(stream->next()); // the stream now reads as finished
}

TEST_CASE("destroying a stream whose producer's io_context was stopped does not wait for it",
          "[stream][lifetime][exit]") {
  asio::io_context io;
  std::optional<sync_stream<int>> stream;
  stream.emplace(asio::any_io_executor(io.get_executor()), 1,
                 [](stream_writer<int> out) -> asio::awaitable<void> {
                   co_await out.emit(1);
                   co_await park_for_an_hour();
                 });
  std::thread runner([&] { io.run(); });
  CHECK(stream->next() == 1);
  io.stop(); // as a program does on its way out: nothing will resume the producer
  runner.join();
  stream.reset(); // used to wait forever (CTest timeout); ~io_context destroys the producer
  CHECK_FALSE(stream.has_value());
}

TEST_CASE("a stream held by a coroutine on its producer's stopped loop does not hang its "
          "destruction",
          "[stream][lifetime][exit]") {
  std::atomic<int> first{0};
  {
    asio::io_context io;
    sync_stream<int> stream(asio::any_io_executor(io.get_executor()), 1,
                            [](stream_writer<int> out) -> asio::awaitable<void> {
                              co_await out.emit(1);
                              co_await park_for_an_hour();
                            });
    asio::co_spawn(io, hold_and_wait(std::move(stream), first), asio::detached);
    std::thread runner([&] { io.run(); });
    while (first == 0)
      std::this_thread::yield();
    io.stop(); // as a program does on its way out
    runner.join();
  } // ~io_context destroys the consumer, whose stream must not wait for a producer nobody runs
  CHECK(first == 1);
}

namespace {

using test_support::mentions;
using test_support::on_loop;

std::string at_line(std::uint_least32_t line) {
  return fmt::format("stream.test.cpp:{}", line);
}

asio::awaitable<void> emit_one_two_three(stream_writer<int> out) {
  for (int i = 1; i <= 3; ++i)
    co_await out.emit(i);
}

} // namespace

TEST_CASE("a stream's blocking next() on an event loop is reported by default, naming where "
          "the stream was made and the call, and still reads",
          "[stream][diagnostics]") {
  test_support::diagnostics_capture capture;
  const auto made_on = __LINE__ + 1;
  sync_stream<int> numbers(4, emit_one_two_three);
  asio::io_context ioc;
  std::optional<int> first;
  std::uint_least32_t called_on = 0;
  on_loop(ioc, [&] { called_on = __LINE__; first = numbers.next(); });
  CHECK(first == 1);
  const auto reports = capture.reports();
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].kind == smartasync::diagnostic_kind::blocking_call_on_loop);
  CHECK(reports[0].where.line() == called_on);
  CHECK(reports[0].created_at.line() == made_on);
  CHECK(mentions(reports[0].message, "sync_stream"));
  CHECK(mentions(reports[0].message, at_line(called_on)));
  CHECK(mentions(reports[0].message, at_line(made_on)));
  CHECK(mentions(reports[0].message, "async_next()"));
}

TEST_CASE("a range-for over a stream on an event loop is reported at the loop statement, once "
          "per repeat interval",
          "[stream][diagnostics]") {
  test_support::diagnostics_capture capture;
  sync_stream<int> numbers(4, emit_one_two_three);
  asio::io_context ioc;
  std::vector<int> got;
  std::uint_least32_t called_on = 0;
  on_loop(ioc, [&] {
    called_on = __LINE__; for (int v : numbers) got.push_back(v);
  });
  CHECK(got == std::vector<int>{1, 2, 3});
  const auto reports = capture.reports(); // begin() reported; its ++ counted within the interval
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].where.line() == called_on);
}

TEST_CASE("a stream's blocking reads on an event loop follow its loop_call_policy",
          "[stream][diagnostics]") {
  test_support::diagnostics_capture capture;
  asio::io_context ioc;
  std::optional<int> got;
  std::uint_least32_t called_on = 0;

  SECTION("report: next() names the stream and the call") {
    sync_stream<int> numbers(4, emit_one_two_three, {.name = "numbers"});
    on_loop(ioc, [&] { called_on = __LINE__; got = numbers.next(); });
    CHECK(got == 1);
    const auto reports = capture.reports();
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].name == "numbers");
    CHECK(mentions(reports[0].message, "sync_stream 'numbers'"));
    CHECK(mentions(reports[0].message, at_line(called_on)));
  }
  SECTION("report: ++ names the iterator's begin()") {
    sync_stream<int> numbers(4, emit_one_two_three, {.name = "numbers"});
    const auto begun_on = __LINE__ + 1;
    auto it = numbers.begin();
    CHECK(capture.reports().empty()); // off the loop
    on_loop(ioc, [&] { ++it; });
    CHECK(*it == 2);
    const auto reports = capture.reports();
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].where.line() == begun_on);
  }
  SECTION("strict: next() throws blocking_call_on_loop and takes no item") {
    sync_stream<int> numbers(4, emit_one_two_three,
                             {.name = "numbers", .on_loop = smartasync::loop_call_policy::strict});
    std::string message;
    smartasync::error_code code;
    on_loop(ioc, [&] {
      try {
        called_on = __LINE__; got = numbers.next();
      } catch (const smartasync::system_error& e) {
        code = e.code();
        message = e.what();
      }
    });
    CHECK(code == smartasync::error::blocking_call_on_loop);
    CHECK_FALSE(got);
    CHECK(mentions(message, "'numbers'"));
    CHECK(mentions(message, at_line(called_on)));
    CHECK(numbers.next() == 1); // off the loop: nothing was lost
    CHECK(capture.reports().empty());
  }
  SECTION("strict: begin() and ++ throw blocking_call_on_loop and take no item") {
    sync_stream<int> numbers(4, emit_one_two_three,
                             {.on_loop = smartasync::loop_call_policy::strict});
    smartasync::error_code from_begin;
    on_loop(ioc, [&] {
      from_begin = test_support::code_thrown_by([&] { (void)numbers.begin(); });
    });
    CHECK(from_begin == smartasync::error::blocking_call_on_loop);
    auto it = numbers.begin(); // off the loop
    CHECK(*it == 1);
    smartasync::error_code from_increment;
    on_loop(ioc, [&] { from_increment = test_support::code_thrown_by([&] { ++it; }); });
    CHECK(from_increment == smartasync::error::blocking_call_on_loop);
    CHECK(*it == 1);
    ++it;
    CHECK(*it == 2);
    CHECK(capture.reports().empty());
  }
  SECTION("silent: reads, no report") {
    sync_stream<int> numbers(4, emit_one_two_three,
                             {.on_loop = smartasync::loop_call_policy::silent});
    on_loop(ioc, [&] { got = numbers.next(); });
    CHECK(got == 1);
    CHECK(capture.reports().empty());
  }
  SECTION("a context declared with allow_blocking(): reads, no report, even under strict") {
    sync_stream<int> numbers(4, emit_one_two_three,
                             {.on_loop = smartasync::loop_call_policy::strict});
    smartasync::allow_blocking(ioc);
    on_loop(ioc, [&] { got = numbers.next(); });
    CHECK(got == 1);
    CHECK(capture.reports().empty());
  }
}
