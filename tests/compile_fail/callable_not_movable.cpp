// The wrapper stores the callable; one that can be neither copied nor moved cannot be stored.
// expected: must be copy- or move-constructible
#include <smartasync/smart_async.hpp>
#include <mutex>
struct pinned {
  std::mutex m;
  int operator()() const { return 1; }
};
int main() {
  smartasync::blocking_pool pool{1};
  pinned p;
  auto w = smartasync::smart_async(pool, std::move(p));
  return w();
}
