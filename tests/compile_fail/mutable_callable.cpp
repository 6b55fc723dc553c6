// A mutable lambda would be called concurrently without synchronisation: refused.
// expected: the callable is shared by concurrent calls
#include <smartasync/smart_async.hpp>
int main() {
  smartasync::blocking_pool pool{1};
  auto w = smartasync::smart_async(pool, [n = 0]() mutable { return ++n; });
  return w();
}
