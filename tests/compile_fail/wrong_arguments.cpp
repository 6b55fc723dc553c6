// A call the callable cannot take, with no completion token at the end either.
// expected: cannot be called with these arguments
#include <smartasync/smart_async.hpp>
#include <string>
int main() {
  smartasync::blocking_pool pool{1};
  auto w = smartasync::smart_async(pool, [](int x) { return x; });
  auto op = w.async_call(std::string("not an int"));
  (void)op;
}
