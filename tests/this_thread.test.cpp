// Test that the header is self-contained.
#include <smartasync/this_thread.hpp>

#include <smartasync/blocking_pool.hpp>
#include <smartasync/offload.hpp>

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(strand.hpp)
#include SMARTASYNC_ASIO_HEADER(thread_pool.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)
#include "common/catch.hpp"

#include <future>
#include <thread>

using smartasync::this_thread::is_running_event_loop;

TEST_CASE("a plain thread is not running an event loop", "[this_thread]") {
  CHECK_FALSE(is_running_event_loop());
  bool seen = true;
  std::thread([&] { seen = is_running_event_loop(); }).join();
  CHECK_FALSE(seen);
}

TEST_CASE("io_context run, run_one, poll and poll_one are detected", "[this_thread]") {
  asio::io_context ioc;
  int detected = 0;
  auto probe = [&] { detected += is_running_event_loop() ? 1 : 0; };
  asio::post(ioc, probe);
  ioc.run();
  ioc.restart();
  asio::post(ioc, probe);
  ioc.run_one();
  ioc.restart();
  asio::post(ioc, probe);
  ioc.poll();
  ioc.restart();
  asio::post(ioc, probe);
  ioc.poll_one();
  CHECK(detected == 4);
  CHECK_FALSE(is_running_event_loop()); // and forgotten once run returns
}

TEST_CASE("asio::thread_pool threads and strands are detected", "[this_thread]") {
  asio::thread_pool threads(2);
  auto on_pool = asio::post(threads, asio::use_future([] { return is_running_event_loop(); }));
  auto strand = asio::make_strand(threads);
  auto on_strand = asio::post(strand, asio::use_future([&] {
    return is_running_event_loop() && strand.running_in_this_thread();
  }));
  CHECK(on_pool.get());
  CHECK(on_strand.get());
  threads.join();
}

TEST_CASE("a blocking_pool worker is not an event loop but knows its pool", "[this_thread]") {
  smartasync::blocking_pool pool{1};
  CHECK(smartasync::this_thread::current_pool() == nullptr);
  auto seen = smartasync::async_offload(pool, [] {
    return std::pair{is_running_event_loop(), smartasync::this_thread::current_pool()};
  }, asio::use_future).get();
  CHECK_FALSE(seen.first);
  CHECK(seen.second == &pool);
}
