// fan_out of a plain blocking function (not an awaitable, not a smart_async wrapper).
// expected: the function must return asio::awaitable<R>
#include <smartasync/fan_out.hpp>
#include <vector>
int main() {
  std::vector<int> inputs{1, 2, 3};
  auto op = smartasync::fan_out(inputs, 2, [](int x) { return x * 2; });
  (void)op;
}
