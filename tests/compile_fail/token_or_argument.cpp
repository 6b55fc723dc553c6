// A generic callable could take the completion token as an argument too: refused, with how to
// say which is meant.
// expected: is both a completion token
#include <smartasync/smart_async.hpp>
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)
int main() {
  smartasync::blocking_pool pool{1};
  auto count = smartasync::smart_async(pool, [](const auto&... xs) { return sizeof...(xs); });
  auto n = count.async_call(1, 2, smartasync::asio::use_future);
  (void)n;
}
