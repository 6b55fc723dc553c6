// bench/streams.cpp - what an item costs through a stream in each direction between a plain thread
// and a coroutine: async_stream (thread -> coroutine) beside sync_stream (coroutine -> thread).
// Distributed under the Boost Software License, Version 1.0.
//
// Each run streams n ints from one side to the other and ends the stream; the two directions
// alternate in one process (the harness's Williams rounds) and the table reports the paired
// ratio. The plain thread is the benchmark's own; the coroutine runs on an io_context of its own
// thread (for async_stream, the one the benchmark runs; for sync_stream, the shared background
// loop). With a buffer of 1 each item is a round trip: the sender may not send the next one until
// the consumer has taken this one, so every item wakes each side once. With 64 the sides run
// apart and an item costs the buffer's bookkeeping more than the wake-ups.
#include <smartasync/async_stream.hpp>
#include <smartasync/stream.hpp>

#include "harness.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <cstddef>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

// A plain thread sends 0..n-1; a coroutine on this thread's io_context receives them.
void thread_to_coroutine(std::size_t capacity, std::size_t n) {
  smartasync::async_stream<int> stream(capacity);
  std::thread sender([out = stream.sender(), n]() mutable {
    for (std::size_t i = 0; i < n; ++i)
      out.send(int(i));
  });
  asio::io_context io;
  asio::co_spawn(
      io,
      [&stream]() -> asio::awaitable<void> {
        while (auto item = co_await stream.async_receive())
          bench::keep(*item);
      },
      asio::detached);
  io.run();
  sender.join();
}

// A coroutine on the background loop emits 0..n-1; this plain thread reads them.
void coroutine_to_thread(std::size_t capacity, std::size_t n) {
  smartasync::sync_stream<int> stream(
      capacity, [n](smartasync::stream_writer<int> out) -> asio::awaitable<void> {
        for (std::size_t i = 0; i < n; ++i)
          co_await out.emit(int(i));
      });
  for (int item : stream)
    bench::keep(item);
}

void streams_group(std::size_t capacity, const bench::options& opts, bench::results& out) {
  const std::string title = fmt::format("streams, buffer of {}", capacity);
  if (!opts.wanted(title))
    return;
  std::vector<bench::contender> cs{
      {"async_stream: thread -> coroutine",
       [capacity](std::size_t n) { thread_to_coroutine(capacity, n); }, 0, {}},
      {"sync_stream: coroutine -> thread",
       [capacity](std::size_t n) { coroutine_to_thread(capacity, n); }, 0, {}},
  };
  bench::alternate(cs, opts);
  bench::report(title, cs, out);
  const bench::spread r = bench::paired_ratio(cs[0], cs[1]);
  fmt::print("async_stream / sync_stream per item: {:.3f} ({:.2f}-{:.2f})\n", r.median, r.min,
             r.max);
}

} // namespace

int main(int argc, char** argv) {
  auto opts = bench::options::parse(argc, argv);
  bench::results out(opts);
  fmt::print("# streams between a plain thread and a coroutine, both directions ({} rounds, "
             "medians)\n",
             opts.rounds);
  for (std::size_t capacity : {1, 64})
    streams_group(capacity, opts, out);
}
