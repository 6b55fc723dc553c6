// Asio's void(std::exception_ptr, R) signature needs some R on failure.
// expected: R must be default-constructible
#include <smartasync/smart_async.hpp>
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)
struct no_default {
  explicit no_default(int) {}
};
int main() {
  smartasync::blocking_pool pool{1};
  auto w = smartasync::smart_async(pool, [] { return no_default{1}; });
  w.async_call(smartasync::asio::use_future).get();
}
