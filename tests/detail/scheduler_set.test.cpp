// Test that the header is self-contained.
#include <smartasync/detail/scheduler_set.hpp>

#include "common/asio_flavour.hpp"

#include <smartasync/detail/call_site.hpp>

#include SMARTASYNC_ASIO_HEADER(detail/scheduler.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)
#include "common/catch.hpp"

#include <thread>

namespace {

using smartasync::detail::scheduler_set;

const scheduler_set::scheduler* scheduler_of(asio::io_context& context) {
  return &asio::use_service<asio::detail::scheduler>(context);
}

// What `set` answers on a thread running `context`.
const scheduler_set::scheduler* running_inside(asio::io_context& context,
                                               const scheduler_set& set) {
  auto answer = asio::post(context, asio::use_future([&] { return set.running_here(); }));
  context.run();
  context.restart();
  return answer.get();
}

} // namespace

TEST_CASE("an empty scheduler set contains no thread, a loop's included", "[scheduler_set]") {
  scheduler_set set;
  asio::io_context loop;
  CHECK(set.size() == 0);
  CHECK(set.running_here() == nullptr);
  CHECK(running_inside(loop, set) == nullptr);
}

TEST_CASE("a scheduler set finds the member a thread is running, and only there",
          "[scheduler_set]") {
  scheduler_set set;
  asio::io_context member, other;
  set.add(scheduler_of(member));
  CHECK(running_inside(member, set) == scheduler_of(member));
  CHECK(running_inside(other, set) == nullptr);
  CHECK_FALSE(set.contains_this_thread()); // this thread runs no loop now
  std::thread([&] { CHECK(set.running_here() == nullptr); }).join();
}

TEST_CASE("a scheduler added twice stays a member until both entries are removed",
          "[scheduler_set]") {
  scheduler_set set;
  asio::io_context loop;
  set.add(scheduler_of(loop));
  set.add(scheduler_of(loop)); // two watchdogs on one loop
  set.remove(scheduler_of(loop));
  CHECK(set.size() == 1);
  CHECK(running_inside(loop, set) == scheduler_of(loop));
  set.remove(scheduler_of(loop));
  CHECK(set.size() == 0);
  CHECK(running_inside(loop, set) == nullptr);
  set.remove(scheduler_of(loop)); // absent: nothing happens
  CHECK(set.size() == 0);
}

TEST_CASE("the declared blocking contexts and the watched loops are separate sets",
          "[scheduler_set]") {
  CHECK(&smartasync::detail::blocking_contexts::instance() !=
        &smartasync::detail::watched_loops::instance());
}
