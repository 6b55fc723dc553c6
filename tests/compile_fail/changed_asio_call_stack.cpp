// An Asio whose per-thread call stack no longer has the shape loop detection reads (here:
// contains() is gone) stops the build with a message naming that internal. Stands in for a
// future Asio: this file's call_stack takes the place of Asio's own.
// expected: This Asio changed asio::detail::call_stack
#if defined(SMARTASYNC_USE_BOOST_ASIO)
#define BOOST_ASIO_DETAIL_CALL_STACK_HPP
namespace boost::asio::detail {
#else
#define ASIO_DETAIL_CALL_STACK_HPP
namespace asio::detail {
#endif
template <typename Key, typename Value = unsigned char>
class call_stack {
public:
  static Value* top() { return nullptr; }
};
} // namespace asio::detail

#include <smartasync/this_thread.hpp>

int main() { return smartasync::this_thread::is_running_event_loop() ? 1 : 0; }
