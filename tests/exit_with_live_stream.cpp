// A process that exits with a sync_stream still alive must not hang at static destruction,
// even when the loop that runs the stream's producer has been stopped and nothing will ever
// run the producer again.
#include <smartasync/stream.hpp>

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(this_coro.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)

#include <chrono>
#include <cstdio>
#include <thread>

namespace {

asio::io_context& loop() {
  static asio::io_context io; // constructed first, so destroyed after the stream
  return io;
}

} // namespace

int main() {
  auto& io = loop();
  // A static stream, destroyed at exit, whose producer waits for something that never comes.
  static smartasync::sync_stream<int> events(
      io.get_executor(), 1, [](smartasync::stream_writer<int> out) -> asio::awaitable<void> {
        co_await out.emit(1);
        asio::steady_timer never(co_await asio::this_coro::executor, std::chrono::hours(1));
        co_await never.async_wait(asio::use_awaitable);
      });
  std::thread runner([&] { io.run(); });
  const bool got_first = events.next() == 1;
  io.stop(); // the program's loop is done: nothing will run the producer again
  runner.join();
  std::printf("returning from main with a live stream (first item %s)\n", got_first ? "ok" : "missing");
  // ~events runs first: it must not wait for its producer, which a stopped loop never resumes;
  // ~io_context then destroys the producer.
  return got_first ? 0 : 1;
}
