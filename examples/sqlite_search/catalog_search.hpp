// catalog_search.hpp - the one blocking search function, wrapped once for both front ends.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SQLITE_SEARCH_CATALOG_SEARCH_HPP
#define SQLITE_SEARCH_CATALOG_SEARCH_HPP

#include "catalog/catalog_db.hpp"
#include "catalog/connection_pool.hpp"

#include <smartasync/smartasync.hpp>

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
inline smartasync::smart_function<catalog_search> make_catalog_search(smartasync::blocking_pool& pool,
                                                                      catalog::connection_pool& connections) {
  return smartasync::smart_async(pool, catalog_search{&connections}, {.name = "catalog search"});
}

} // namespace sqlite_search

#endif // SQLITE_SEARCH_CATALOG_SEARCH_HPP
