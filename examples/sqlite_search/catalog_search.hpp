// catalog_search.hpp - the one blocking search function, wrapped once for both front ends.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SQLITE_SEARCH_CATALOG_SEARCH_HPP
#define SQLITE_SEARCH_CATALOG_SEARCH_HPP

#include "catalog/catalog_db.hpp"
#include "catalog/connection_pool.hpp"

#include <smartasync/smartasync.hpp>

#include <fmt/format.h>

#include <filesystem>
#include <functional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

namespace sqlite_search {

using search_result = std::vector<catalog::search_hit>;

/// What the application already had: a plain blocking function over SQLite, plus a stop token.
/**
 * It borrows a connection for the duration of one search, so the same object is safe to call
 * from the CLI's main thread, from every pool worker at once, and (in --inline mode) from the
 * event loop. Throws what catalog_db::search throws.
 *
 * Its first parameter is a std::stop_token, so smartasync hands every async call one. When the
 * call is cancelled while it runs (the server's search timeout, the end of its shutdown grace),
 * the token is stopped and the std::stop_callback below runs on the cancelling thread:
 * sqlite3_interrupt, the interrupter hook (docs/sync-async-guide.md), and the statement stops
 * at its next row. Inline calls get a token that never stops.
 */
struct catalog_search {
  catalog::connection_pool* connections;
  /// When set: one line per search served for an HTTP request, written from inside the call
  /// (on the pool worker), naming the request (smartasync::request_id, which smartasync carries there).
  std::function<void(const std::string&)> trace = {};

  search_result operator()(std::stop_token stop, std::string query, int limit) const {
    auto db = connections->acquire();
    // Declared after the lease, so the connection outlives the callback (whose destructor
    // waits for a run of it in progress on another thread).
    const std::stop_callback interrupt(stop, [&db]() noexcept { db->interrupt(); });
    auto hits = db->search(query, limit);
    const std::string& request = smartasync::request_id::current();
    if (trace && !request.empty())
      trace(fmt::format("{}: search {:?} (limit {}): {} hits", request, query, limit, hits.size()));
    return hits;
  }
};

/// Wraps catalog_search for `pool`: `search(q, n)` runs inline, `co_await search.async_call(q, n)`
/// runs on the pool. Size `connections` to the pool's thread count so no worker ever waits.
///
/// A search cancelled while it runs is interrupted (sqlite3_interrupt) and its caller is
/// completed once it has returned: smartasync's safe default, running_cancel::wait_for_return,
/// which costs milliseconds now that SQLite is told to stop. (Before the interrupter, this
/// example had to abandon the running call, running_cancel::abandon, to answer in time.)
inline smartasync::smart_async_function<catalog_search> make_catalog_search(
    smartasync::blocking_pool& pool, catalog::connection_pool& connections,
    std::function<void(const std::string&)> trace = {}) {
  return smartasync::smart_async(pool, catalog_search{&connections, std::move(trace)},
                                 {.name = "catalog search", .on_loop = smartasync::loop_call_policy::report});
}

/// A word no package has: searching for it opens the full-text index and reads a few pages.
inline constexpr const char* readiness_probe_word = "smartasyncreadinessprobe";

/// The readiness probe: can a search be served from this file right now?
/**
 * It opens a connection of its own rather than borrowing one: a serving connection keeps pages
 * in SQLite's cache, which can hide a file damaged or replaced since, and a probe that only
 * reads the cache would say ready while searches fail. Opening and one index lookup take a few
 * milliseconds. Throws what catalog_db throws (database_error for a missing or corrupt file).
 */
struct catalog_probe {
  std::filesystem::path file;

  void operator()() const {
    const catalog::catalog_db db(file);
    (void)db.search(readiness_probe_word, 1);
  }
};

/// Wraps catalog_probe for `pool`, so /ready takes the same path as a search.
inline smartasync::smart_async_function<catalog_probe> make_catalog_probe(smartasync::blocking_pool& pool,
                                                                    const catalog::connection_pool& connections) {
  return smartasync::smart_async(pool, catalog_probe{connections.path()}, {.name = "catalog readiness probe"});
}

} // namespace sqlite_search

#endif // SQLITE_SEARCH_CATALOG_SEARCH_HPP
