// Read by doxygen only (docs/Doxyfile): not installed, not compiled.

/// Every public name of smartasync; each header covers one concept, and
/// smartasync/smartasync.hpp includes them all. See the overview on the front page.
namespace smartasync {
/// What kind of thread this is: an event loop, a pool worker, one allowed to block
/// (smartasync/this_thread.hpp, smartasync/blocking_context.hpp).
namespace this_thread {}
/// What a call running on the pool can ask about its own deadline (smartasync/deadline.hpp).
namespace this_call {}
} // namespace smartasync

// The other libraries' templates that the public headers specialise, declared so that
// doxygen 1.9.4 finds their scope (and EXCLUDE_SYMBOLS leaves them out).
namespace fmt {
template <typename T, typename Char, typename Enable>
struct formatter;
}
namespace std {
template <typename T>
struct is_error_code_enum;
}
namespace asio {
template <typename CompletionToken, typename... Signatures>
class async_result;
}
