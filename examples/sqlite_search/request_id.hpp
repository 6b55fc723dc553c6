// request_id.hpp - the id of the HTTP request being served, carried to the pool worker.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SQLITE_SEARCH_REQUEST_ID_HPP
#define SQLITE_SEARCH_REQUEST_ID_HPP

#include <string>
#include <utility>

namespace sqlite_search {

/// The request a search serves ("req-17"), held the way logging libraries hold their context:
/// in a thread-local. The server sets it on the loop for each request and registers it with
/// smartasync::carry_context, so the offloaded search reads its own request's id on the pool
/// worker (and the coroutine resumes with it). A smartasync context carrier.
struct request_id {
  using value_type = std::string;
  static inline thread_local std::string current;
  static value_type capture() noexcept { return current; }
  static value_type exchange(value_type v) noexcept { return std::exchange(current, std::move(v)); }
};

} // namespace sqlite_search

#endif // SQLITE_SEARCH_REQUEST_ID_HPP
