// catalog_search.hpp - the one blocking search function, wrapped once for both front ends.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SQLITE_SEARCH_CATALOG_SEARCH_HPP
#define SQLITE_SEARCH_CATALOG_SEARCH_HPP

#include "catalog/catalog_db.hpp"
#include "catalog/connection_pool.hpp"

#include <smartasync/smartasync.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace sqlite_search {

using search_result = std::vector<catalog::search_hit>;

/// What the application already had: a plain blocking function over SQLite.
/**
 * It borrows a connection for the duration of one search, so the same object is safe to call
 * from the CLI's main thread, from every pool worker at once, and (in --inline mode) from the
 * event loop. Throws what catalog_db::search throws.
 */
struct catalog_search {
  catalog::connection_pool* connections;

  search_result operator()(std::string query, int limit) const {
    auto db = connections->acquire();
    return db->search(query, limit);
  }
};

/// Wraps catalog_search for `pool`: `search(q, n)` runs inline, `co_await search.async(q, n)`
/// runs on the pool. Size `connections` to the pool's thread count so no worker ever waits.
///
/// A search cancelled while it runs (the server's shutdown grace is over) is abandoned: its
/// client is answered at once and the call finishes on its worker unobserved. That is safe
/// here, and only because of it: the call touches nothing but its own arguments and
/// `connections`, which outlives the pool (the pool's destructor waits for the call). By
/// default smartasync would wait for the call to return, since SQLite cannot be told to stop.
inline smartasync::smart_function<catalog_search> make_catalog_search(smartasync::blocking_pool& pool,
                                                                      catalog::connection_pool& connections) {
  return smartasync::smart_async(pool, catalog_search{&connections},
                                 {.name = "catalog search",
                                  .on_loop = smartasync::loop_call_policy::report,
                                  .on_cancel = smartasync::running_cancel::abandon_call});
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
inline smartasync::smart_function<catalog_probe> make_catalog_probe(smartasync::blocking_pool& pool,
                                                                    const catalog::connection_pool& connections) {
  return smartasync::smart_async(pool, catalog_probe{connections.path()}, {.name = "catalog readiness probe"});
}

} // namespace sqlite_search

#endif // SQLITE_SEARCH_CATALOG_SEARCH_HPP
