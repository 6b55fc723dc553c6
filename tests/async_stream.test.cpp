// Test that the header is self-contained.
#include "smartasync/async_stream.hpp"

#include "common/catch.hpp"

#include "common/asio_flavour.hpp"
#include "common/test_support.hpp"

#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(this_coro.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)
#include SMARTASYNC_ASIO_HEADER(experimental/awaitable_operators.hpp)

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using smartasync::async_stream;
using smartasync::stream_sender;

namespace {

using item_ptr = std::unique_ptr<int>;

template <typename T>
asio::awaitable<std::vector<T>> receive_all(async_stream<T>& stream) {
  std::vector<T> got;
  while (auto item = co_await stream.async_receive())
    got.push_back(std::move(*item));
  co_return got;
}

// What a send on another thread came to: accepted, or refused with which code and message;
// and whether the caller still has its item. Recorded, not CHECKed (Catch2's assertions are
// not thread-safe).
struct send_outcome {
  bool accepted = false;
  smartasync::error_code code;
  std::string message;
  bool item_kept = false;
};

std::thread send_on_thread(stream_sender<item_ptr> out, int value, send_outcome& outcome) {
  return std::thread([out = std::move(out), value, &outcome]() mutable {
    auto item = std::make_unique<int>(value);
    try {
      out.send(std::move(item));
      outcome.accepted = true;
    } catch (const smartasync::system_error& e) {
      outcome.code = e.code();
      outcome.message = e.what();
    }
    outcome.item_kept = item != nullptr && *item == value;
  });
}

// Receives one item through `io` (run on this thread), however long it takes to arrive; a
// callback rather than a coroutine, so that move-only items need no awaitable<optional<T>>
// (GCC 12 warns, wrongly, about one in co_spawn's frame).
template <typename T>
std::optional<T> receive_one(async_stream<T>& stream, asio::io_context& io) {
  std::exception_ptr error;
  std::optional<T> got;
  bool done = false;
  stream.async_receive(asio::bind_executor(io, [&](std::exception_ptr e, std::optional<T> v) {
    error = e;
    got = std::move(v);
    done = true;
  }));
  io.run();
  io.restart();
  if (!done)
    throw std::logic_error("async_receive never completed");
  if (error)
    std::rethrow_exception(error);
  return got;
}

// Every item says who sent it, in which order.
struct tagged {
  int sender;
  int seq;
};

asio::awaitable<void> park_for_an_hour(async_stream<item_ptr> held, std::atomic<bool>& parked) {
  asio::steady_timer never(co_await asio::this_coro::executor, std::chrono::hours(1));
  parked = true;
  co_await never.async_wait(asio::use_awaitable);
  held.close();
}

} // namespace

TEST_CASE("an async_stream delivers every item in order, sent from a plain thread, to a "
          "coroutine on its own loop",
          "[async_stream]") {
  async_stream<int> numbers(2);
  std::thread::id sender_thread;
  std::thread sender([out = numbers.sender(), &sender_thread]() mutable {
    sender_thread = std::this_thread::get_id();
    for (int i = 0; i < 100; ++i)
      out.send(i);
  }); // `out` goes with the thread: the stream ends
  asio::io_context io;
  std::thread::id consumer_thread;
  auto consume = [&]() -> asio::awaitable<std::vector<int>> {
    std::vector<int> got;
    while (auto n = co_await numbers.async_receive()) {
      consumer_thread = std::this_thread::get_id();
      got.push_back(*n);
    }
    co_return got;
  };
  const std::vector<int> got = test_support::run(io, consume());
  sender.join();
  std::vector<int> expected(100);
  for (int i = 0; i < 100; ++i)
    expected[std::size_t(i)] = i;
  CHECK(got == expected);
  CHECK(consumer_thread == std::this_thread::get_id());
  CHECK(sender_thread != consumer_thread);
  CHECK_FALSE(test_support::run(io, numbers.async_receive())); // ended stays ended
}

TEST_CASE("async_receive works with a callback and use_future", "[async_stream]") {
  async_stream<int> numbers(4);
  auto out = numbers.sender();
  out.send(1);
  out.send(2);
  asio::io_context io;
  std::optional<int> by_callback;
  numbers.async_receive(asio::bind_executor(io, [&](std::exception_ptr e, std::optional<int> v) {
    if (!e)
      by_callback = v;
  }));
  io.run();
  CHECK(by_callback == 1);
  CHECK(numbers.async_receive(asio::use_future).get() == 2);
}

TEST_CASE("try_send fills the buffer up to its capacity and then refuses, keeping the item",
          "[async_stream][back-pressure]") {
  async_stream<item_ptr> items(2);
  auto out = items.sender();
  auto one = std::make_unique<int>(1), two = std::make_unique<int>(2),
       three = std::make_unique<int>(3);
  CHECK(out.try_send(std::move(one)));
  CHECK(out.try_send(std::move(two)));
  CHECK_FALSE(out.try_send(std::move(three))); // full
  REQUIRE(three != nullptr);                   // not moved from: the caller still has it
  CHECK(*three == 3);
  asio::io_context io;
  CHECK(**receive_one(items, io) == 1);
  CHECK(out.try_send(std::move(three))); // a slot is free again
  CHECK(three == nullptr);
  CHECK(**receive_one(items, io) == 2);
  CHECK(**receive_one(items, io) == 3);
}

TEST_CASE("a send to a full async_stream blocks until the consumer takes an item",
          "[async_stream][back-pressure]") {
  async_stream<int> numbers(1);
  auto out = numbers.sender();
  REQUIRE(out.try_send(0)); // full
  std::atomic<bool> returned{false};
  std::thread sender([&] {
    out.send(1);
    returned = true;
  });
  // Whatever the sender's progress, it cannot have returned: nothing has been taken. (The
  // pause only gives a send that did not block the time to return and be caught.)
  std::this_thread::sleep_for(5ms);
  CHECK_FALSE(returned);
  asio::io_context io;
  CHECK(receive_one(numbers, io) == 0); // frees the slot: the sender completes
  sender.join();
  CHECK(returned);
  CHECK(receive_one(numbers, io) == 1);
}

TEST_CASE("a fast sender never gets more than the capacity ahead of a slow coroutine",
          "[async_stream][back-pressure]") {
  constexpr std::size_t capacity = 3;
  constexpr std::size_t count = 60;
  async_stream<std::size_t> items(capacity);
  std::atomic<std::size_t> sent{0};
  std::thread sender([out = items.sender(), &sent]() mutable {
    for (std::size_t i = 0; i < count; ++i) {
      out.send(i);
      ++sent;
    }
  });
  auto consume = [&]() -> asio::awaitable<std::size_t> {
    std::size_t taken = 0, worst_lead = 0;
    while (auto i = co_await items.async_receive()) {
      ++taken; // this item left the buffer before the coroutine resumed
      // The buffer holds at most `capacity`, and every completed send is in it or taken.
      const std::size_t sent_now = sent.load();
      worst_lead = std::max(worst_lead, sent_now > taken ? sent_now - taken : 0);
      if (taken % 10 == 0) // let the sender fill the buffer
        std::this_thread::sleep_for(2ms);
    }
    co_return worst_lead;
  };
  const std::size_t worst_lead = test_support::run(consume());
  sender.join();
  CHECK(sent == count);
  CHECK(worst_lead <= capacity);
}

TEST_CASE("a sender's close ends the stream after the buffered items, and later sends are "
          "refused and keep their item",
          "[async_stream][close]") {
  asio::io_context io;
  SECTION("close()") {
    async_stream<item_ptr> items(4);
    auto out = items.sender();
    out.send(std::make_unique<int>(1));
    out.send(std::make_unique<int>(2));
    out.close();
    auto late = std::make_unique<int>(3);
    CHECK(test_support::code_thrown_by([&] { out.send(std::move(late)); }) ==
          smartasync::error::stream_closed);
    CHECK(test_support::code_thrown_by([&] { (void)out.try_send(std::move(late)); }) ==
          smartasync::error::stream_closed);
    REQUIRE(late != nullptr);
    CHECK(*late == 3);
    CHECK(**receive_one(items, io) == 1);
    CHECK(**receive_one(items, io) == 2);
    CHECK_FALSE(receive_one(items, io));
    CHECK_FALSE(receive_one(items, io));
  }
  SECTION("close(error): the consumer gets the items, then the error, once") {
    async_stream<int> numbers(4);
    auto out = numbers.sender();
    out.send(1);
    out.close(std::make_exception_ptr(std::runtime_error("source failed")));
    CHECK(receive_one(numbers, io) == 1);
    std::string what;
    try {
      (void)receive_one(numbers, io);
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    CHECK(what == "source failed");
    CHECK_FALSE(receive_one(numbers, io));
  }
  SECTION("the last sender gone") {
    async_stream<int> numbers(4);
    auto out = numbers.sender();
    auto copy = out;
    out.send(1);
    { auto gone = std::move(out); }
    copy.send(2); // a copy still holds the stream open
    copy = stream_sender<int>{};
    CHECK(receive_one(numbers, io) == 1);
    CHECK(receive_one(numbers, io) == 2);
    CHECK_FALSE(receive_one(numbers, io));
  }
}

TEST_CASE("the consumer's close wakes a blocked sender with stream_closed, its item kept, and the "
          "buffered items can still be received",
          "[async_stream][close]") {
  async_stream<item_ptr> items(1);
  auto out = items.sender();
  out.send(std::make_unique<int>(1)); // full
  send_outcome blocked;
  std::thread sender = send_on_thread(out, 2, blocked);
  items.close();
  sender.join(); // would hang if the close did not wake it
  CHECK_FALSE(blocked.accepted);
  CHECK(blocked.code == smartasync::error::stream_closed);
  CHECK(test_support::mentions(blocked.message, "the consumer closed the stream"));
  CHECK(blocked.item_kept);
  asio::io_context io;
  CHECK(**receive_one(items, io) == 1);
  CHECK_FALSE(receive_one(items, io));
  CHECK(test_support::code_thrown_by([&] { out.send(std::make_unique<int>(3)); }) ==
        smartasync::error::stream_closed);
}

TEST_CASE("destroying the consumer's stream wakes a blocked sender with stream_closed",
          "[async_stream][close][lifetime]") {
  std::optional<async_stream<item_ptr>> items;
  items.emplace(1, smartasync::stream_options{.name = "uploads"});
  auto out = items->sender();
  out.send(std::make_unique<int>(1));
  send_outcome blocked;
  std::thread sender = send_on_thread(out, 2, blocked);
  items.reset();
  sender.join();
  CHECK(blocked.code == smartasync::error::stream_closed);
  CHECK(test_support::mentions(blocked.message, "'uploads'"));
  CHECK(test_support::mentions(blocked.message, "destroyed"));
  CHECK(blocked.item_kept);
}

TEST_CASE("the consumer's io_context destroyed wakes a blocked sender with stream_closed",
          "[async_stream][lifetime]") {
  SECTION("a consumer coroutine holding the stream") {
    async_stream<item_ptr> items(1);
    auto out = items.sender();
    out.send(std::make_unique<int>(1)); // full
    send_outcome blocked;
    std::thread sender;
    {
      asio::io_context io;
      std::atomic<bool> parked{false};
      asio::co_spawn(io, park_for_an_hour(std::move(items), parked), asio::detached);
      io.poll();
      REQUIRE(parked);
      sender = send_on_thread(out, 2, blocked);
    } // ~io_context destroys the coroutine, and with it the stream it holds
    sender.join();
    CHECK(blocked.code == smartasync::error::stream_closed);
    CHECK(blocked.item_kept);
  }
  SECTION("a receive pending on it") {
    async_stream<item_ptr> items(1);
    auto out = items.sender();
    send_outcome blocked;
    std::thread sender;
    {
      asio::io_context io; // never run: the receive's completion waits in it
      items.async_receive(asio::bind_executor(io, [](std::exception_ptr, std::optional<item_ptr>) {}));
      out.send(std::make_unique<int>(1)); // wakes the receive, whose completion is never run
      sender = send_on_thread(out, 2, blocked); // the buffer is full: blocks
    } // ~io_context abandons the receive: its consumer is gone
    sender.join();
    CHECK(blocked.code == smartasync::error::stream_closed);
    CHECK(test_support::mentions(blocked.message, "execution context was destroyed"));
    CHECK(blocked.item_kept);
    asio::io_context other;
    CHECK_FALSE(receive_one(items, other)); // the stream reads as ended
  }
}

TEST_CASE("a cancelled async_receive takes nothing, also when its item had already arrived",
          "[async_stream][cancellation]") {
  async_stream<int> numbers(4);
  auto out = numbers.sender();
  // The consumer's loop runs only when the test runs it, so a receive can be cancelled after
  // its wake-up is queued there but before it has run.
  asio::io_context consumer_io;
  asio::cancellation_signal cancel;
  struct outcome {
    bool done = false;
    std::exception_ptr error;
    std::optional<int> item;
  };
  auto receive_into = [&](outcome& o) {
    numbers.async_receive(asio::bind_cancellation_slot(
        cancel.slot(),
        asio::bind_executor(consumer_io, [&o](std::exception_ptr e, std::optional<int> v) {
          o = outcome{true, e, v};
        })));
  };

  // 1. Cancelled while nothing has arrived.
  outcome empty_wait;
  receive_into(empty_wait);
  consumer_io.poll();
  CHECK_FALSE(empty_wait.done);
  cancel.emit(asio::cancellation_type::terminal);
  consumer_io.run();
  consumer_io.restart();
  CHECK(empty_wait.done);
  CHECK(test_support::code_of(empty_wait.error) == asio::error::operation_aborted);
  CHECK_FALSE(empty_wait.item);

  // 2. Cancelled after item 1 arrived (sent by another thread) and woke it, before its
  //    completion ran: the loser of an awaitable `||` is in this position.
  outcome woken_wait;
  receive_into(woken_wait);
  std::thread([&] { out.send(1); }).join();
  cancel.emit(asio::cancellation_type::terminal);
  consumer_io.run();
  consumer_io.restart();
  CHECK(woken_wait.done);
  CHECK(test_support::code_of(woken_wait.error) == asio::error::operation_aborted);
  CHECK_FALSE(woken_wait.item);

  // Nothing lost, nothing reordered, and the stream itself is still open.
  out.send(2);
  CHECK(receive_one(numbers, consumer_io) == 1);
  CHECK(receive_one(numbers, consumer_io) == 2);
}

TEST_CASE("async_receive raced against a timer with || loses no item sent from a thread",
          "[async_stream][cancellation]") {
  constexpr int count = 200;
  async_stream<int> numbers(2);
  std::thread sender([out = numbers.sender()]() mutable {
    for (int i = 0; i < count; ++i)
      out.send(i);
  });
  auto consume = [&numbers]() -> asio::awaitable<std::vector<int>> {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    std::vector<int> got;
    for (;;) {
      timer.expires_after(std::chrono::seconds(0)); // already due: the race is real
      auto r = co_await (numbers.async_receive() || timer.async_wait(asio::use_awaitable));
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
  sender.join();
  std::vector<int> expected(count);
  for (int i = 0; i < count; ++i)
    expected[std::size_t(i)] = i;
  CHECK(got == expected);
}

TEST_CASE("several senders on different threads: each item once, in each sender's order",
          "[async_stream][senders]") {
  constexpr int senders = 3;
  constexpr int per_sender = 300;
  async_stream<tagged> stream(2); // most sends find the buffer full and block
  std::vector<std::thread> threads;
  for (int s = 0; s < senders; ++s)
    threads.emplace_back([out = stream.sender(), s]() mutable {
      for (int i = 0; i < per_sender; ++i)
        out.send(tagged{s, i});
    });
  const std::vector<tagged> got = test_support::run(receive_all(stream));
  for (auto& t : threads)
    t.join();
  REQUIRE(got.size() == std::size_t{senders} * per_sender);
  std::array<int, senders> next_seq{};
  int out_of_order = 0;
  for (const tagged& t : got) {
    REQUIRE((t.sender >= 0 && t.sender < senders));
    if (t.seq != next_seq[std::size_t(t.sender)]) // a duplicate, a gap or a swap
      ++out_of_order;
    next_seq[std::size_t(t.sender)] = t.seq + 1;
  }
  CHECK(out_of_order == 0);
  CHECK(next_seq == std::array<int, senders>{per_sender, per_sender, per_sender});
}

TEST_CASE("a moved async_stream carries on, and the moved-from one and an empty sender refuse use",
          "[async_stream][move]") {
  async_stream<int> first(2);
  auto out = first.sender();
  out.send(1);
  async_stream<int> second = std::move(first);
  out.send(2); // the sender follows the state, not the object
  asio::io_context io;
  CHECK(receive_one(second, io) == 1);
  CHECK(receive_one(second, io) == 2);
  CHECK_FALSE(first.valid()); // NOLINT(bugprone-use-after-move): testing exactly that
  CHECK_FALSE(receive_one(first, io));
  CHECK_THROWS_AS(first.sender(), std::logic_error);
  stream_sender<int> empty;
  CHECK_FALSE(empty.valid());
  CHECK_THROWS_AS(empty.send(1), std::logic_error);
  CHECK_THROWS_AS(empty.try_send(1), std::logic_error);
  CHECK_THROWS_AS(async_stream<int>(0), std::invalid_argument);
}

namespace {

using test_support::mentions;
using test_support::on_loop;

std::string at_line(std::uint_least32_t line) {
  return "async_stream.test.cpp:" + std::to_string(line);
}

} // namespace

TEST_CASE("a send on an event loop follows the stream's loop_call_policy",
          "[async_stream][diagnostics]") {
  test_support::diagnostics_capture capture;
  asio::io_context ioc;
  std::uint_least32_t called_on = 0;
  asio::io_context consumer_io;

  SECTION("report (the default): sent, and reported naming the stream and the call") {
    const auto made_on = __LINE__ + 1;
    async_stream<int> numbers(4, smartasync::stream_options{.name = "events"});
    auto out = numbers.sender();
    on_loop(ioc, [&] { called_on = __LINE__; out.send(7); });
    CHECK(receive_one(numbers, consumer_io) == 7);
    const auto reports = capture.reports();
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].kind == smartasync::diagnostic_kind::blocking_call_on_loop);
    CHECK(reports[0].name == "events");
    CHECK(reports[0].where.line() == called_on);
    CHECK(reports[0].created_at.line() == made_on);
    CHECK(mentions(reports[0].message, "async_stream 'events'"));
    CHECK(mentions(reports[0].message, at_line(called_on)));
    CHECK(mentions(reports[0].message, "try_send"));
  }
  SECTION("strict: throws blocking_call_on_loop and sends nothing, the item kept") {
    async_stream<item_ptr> items(4, {.name = "events", .on_loop = smartasync::loop_call_policy::strict});
    auto out = items.sender();
    auto item = std::make_unique<int>(7);
    smartasync::error_code code;
    std::string message;
    on_loop(ioc, [&] {
      try {
        called_on = __LINE__; out.send(std::move(item));
      } catch (const smartasync::system_error& e) {
        code = e.code();
        message = e.what();
      }
    });
    CHECK(code == smartasync::error::blocking_call_on_loop);
    CHECK(mentions(message, "'events'"));
    CHECK(mentions(message, at_line(called_on)));
    REQUIRE(item != nullptr);
    CHECK(*item == 7);
    bool fit = false;
    on_loop(ioc, [&] { fit = out.try_send(std::make_unique<int>(8)); }); // never blocks: allowed
    CHECK(fit);
    out.close();
    CHECK(**receive_one(items, consumer_io) == 8); // the refused item was never buffered
    CHECK_FALSE(receive_one(items, consumer_io));
    CHECK(capture.reports().empty());
  }
  SECTION("silent: sent, nothing reported") {
    async_stream<int> numbers(4, {.on_loop = smartasync::loop_call_policy::silent});
    auto out = numbers.sender();
    on_loop(ioc, [&] { out.send(7); });
    CHECK(receive_one(numbers, consumer_io) == 7);
    CHECK(capture.reports().empty());
  }
  SECTION("off the loop, and try_send on it: never reported") {
    async_stream<int> numbers(4);
    auto out = numbers.sender();
    out.send(1);
    on_loop(ioc, [&] { (void)out.try_send(2); });
    CHECK(receive_one(numbers, consumer_io) == 1);
    CHECK(receive_one(numbers, consumer_io) == 2);
    CHECK(capture.reports().empty());
  }
}
