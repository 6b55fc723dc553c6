// make_smart_function was an implementation detail visible in the public namespace: it is
// deprecated there, and the warning says what to call instead.
// expected: use smartasync::smart_async
#pragma GCC diagnostic error "-Wdeprecated-declarations"
#include <smartasync/smart_async.hpp>
int main() {
  smartasync::blocking_pool pool{1};
  auto w = smartasync::make_smart_function(&pool, [] { return 1; }, {},
                                           smartasync::source_location::current());
  return w();
}
