// async_offload takes work with no arguments (or just a std::stop_token): bind them first.
// expected: offloadable
#include <smartasync/offload.hpp>
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)
int main() {
  smartasync::blocking_pool pool{1};
  smartasync::async_offload(pool, [](int x) { return x; }, smartasync::asio::use_future);
}
