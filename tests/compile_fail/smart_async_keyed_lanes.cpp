// A keyed_lanes picks its lane by a key that a wrapper's call does not carry: refused, with
// what to write instead.
// expected: Wrap the key's lane
#include <smartasync/serial_lane.hpp>
#include <smartasync/smart_async.hpp>
int main() {
  smartasync::blocking_pool pool{1};
  smartasync::keyed_lanes<int> accounts{pool};
  auto debit = smartasync::smart_async(accounts, [](int amount) { return amount; });
  (void)debit;
}
