// A consumer with strict warnings: every public header (smartasync/all_headers.hpp is generated
// from the include directory, so a new header cannot escape), then the main entry points
// instantiated, so that warnings inside templates show up too. Built through add_subdirectory,
// where smartasync's headers are plain -I and not system headers.
#include <smartasync/all_headers.hpp>

#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace net = smartasync::asio;
using namespace std::chrono_literals;

namespace {

net::awaitable<int> exercise(smartasync::blocking_pool& pool) {
  auto twice = smartasync::smart_async(pool, [](int x) { return 2 * x; });
  int sum = co_await twice.async_call(1) + co_await twice.async_call(1);

  auto three = [] { return 3; };
  sum += co_await smartasync::async_offload(pool, three);
  sum += co_await smartasync::with_timeout(twice.async_call(2), 10s);

  smartasync::serial_lane lane{pool};
  auto four = [] { return 4; };
  sum += co_await smartasync::async_offload(lane, four);

  smartasync::async_semaphore permits{co_await net::this_coro::executor, 1};
  {
    auto permit = co_await permits.async_acquire();
    sum += 1;
  }

  const std::vector<int> inputs{1, 2, 3};
  auto square = [&](int x) -> net::awaitable<int> { co_return x * x; };
  const std::vector<int> squares = co_await smartasync::fan_out(inputs, 2, square);
  for (int s : squares)
    sum += s;

  auto once = [&]() -> net::awaitable<int> { co_return 5; };
  sum += co_await smartasync::retry(smartasync::retry_policy{}, once);
  co_return sum;
}

} // namespace

int main() {
  smartasync::blocking_pool pool{2, 8};
  net::io_context ioc;
  auto result = net::co_spawn(ioc, exercise(pool), net::use_future);
  ioc.run();
  const int sum = result.get();

  smartasync::sync_stream<std::string> words(
      4, [](smartasync::stream_writer<std::string> out) -> net::awaitable<void> {
        co_await out.emit("strict");
        co_await out.emit("consumer");
      });
  std::size_t letters = 0;
  for (const std::string& w : words)
    letters += w.size();

  // 2 + 2 + 3 + 4 + 4 + 1 + (1 + 4 + 9) + 5 = 35; "strict" + "consumer" = 14 letters
  std::printf("strict consumer: %d, %zu\n", sum, letters);
  return sum == 35 && letters == 14 ? EXIT_SUCCESS : EXIT_FAILURE;
}
