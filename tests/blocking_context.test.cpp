// Test that the header is self-contained.
#include <smartasync/blocking_context.hpp>

#include "common/test_support.hpp"

#include <smartasync/block_on.hpp>
#include <smartasync/smart_async.hpp>

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(thread_pool.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)
#include "common/catch.hpp"

#include <memory>
#include <thread>

using smartasync::this_thread::may_block;

namespace {

asio::awaitable<int> answer() { co_return 42; }

} // namespace

TEST_CASE("a thread_pool thread is an event loop until the pool is declared for blocking",
          "[blocking_context]") {
  test_support::diagnostics_capture reports;
  smartasync::blocking_pool pool{1};
  auto strict = smartasync::smart_async(pool, [] { return std::this_thread::get_id(); },
                                        {.name = "legacy", .on_loop = smartasync::loop_call_policy::strict});
  asio::thread_pool undeclared(1);
  auto refused = asio::post(undeclared, asio::use_future([&] {
    return test_support::code_thrown_by([&] { strict(); });
  }));
  CHECK(refused.get() == smartasync::error::blocking_call_on_loop);
  CHECK_FALSE(asio::post(undeclared, asio::use_future([] { return may_block(); })).get());

  asio::thread_pool declared(1);
  smartasync::allow_blocking(declared);
  auto ran = asio::post(declared, asio::use_future([&] {
    return std::pair{strict(), std::this_thread::get_id()};
  })).get();
  CHECK(ran.first == ran.second); // inline on the declared pool's thread, not refused
  CHECK(asio::post(declared, asio::use_future([] { return may_block(); })).get());
  // block_on from a declared thread is no misuse either.
  CHECK(asio::post(declared, asio::use_future([] { return smartasync::block_on(answer()); })).get() == 42);
  CHECK(reports.reports().empty());
  undeclared.join();
  declared.join();
}

TEST_CASE("the declaration ends with its context", "[blocking_context]") {
  CHECK(may_block()); // a plain thread
  {
    auto io = std::make_unique<asio::io_context>();
    smartasync::allow_blocking(*io);
    smartasync::allow_blocking(*io); // twice: still one declaration
    bool inside = false;
    asio::post(*io, [&] { inside = may_block(); });
    io->run();
    CHECK(inside);
  }
  asio::io_context fresh; // may reuse the dead context's memory: must not inherit its declaration
  bool inside = true;
  asio::post(fresh, [&] { inside = may_block(); });
  fresh.run();
  CHECK_FALSE(inside);
}
