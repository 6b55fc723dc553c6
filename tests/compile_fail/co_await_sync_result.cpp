// `co_await w(x)` where `co_await w.async_call(x)` was meant. From Asio 1.28 (Boost 1.82) on, Asio's
// promise refuses the sync form's plain result. (Asio 1.22-1.26 took a bool as
// this_coro::throw_if_cancelled; smart_async.test.cpp checks that the call is reported there.)
// asio-at-least: 102800
// expected: await_transform
#include <smartasync/smart_async.hpp>

#include SMARTASYNC_ASIO_HEADER(awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)

namespace net = SMARTASYNC_ASIO_NAMESPACE;

net::awaitable<void> handler(const smartasync::smart_async_function<bool (*)(int)>& check) {
  co_await check(1);
}

bool positive(int x) { return x > 0; }

int main() {
  smartasync::blocking_pool pool{1};
  auto check = smartasync::smart_async(pool, &positive);
  net::io_context ioc;
  net::co_spawn(ioc, handler(check), net::detached);
  ioc.run();
}
