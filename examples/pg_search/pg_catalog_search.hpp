// pg_catalog_search.hpp - the catalogue search on PostgreSQL, wrapped once for both front ends,
// with a stop token that reaches the query on the server.
// Distributed under the Boost Software License, Version 1.0.
#ifndef PG_SEARCH_PG_CATALOG_SEARCH_HPP
#define PG_SEARCH_PG_CATALOG_SEARCH_HPP

#include "pg_catalog.hpp"

#include <smartasync/smartasync.hpp>

#include <chrono>
#include <stop_token>
#include <string>
#include <vector>

namespace pg_search {

using search_result = std::vector<catalog::search_hit>;

/// The blocking search: borrows this worker's connection and runs one query.
/**
 * Its first parameter is a std::stop_token, so smartasync hands every async call one: when
 * the call is cancelled while it runs (a timeout, a shutdown), the token is stopped, and the
 * std::stop_callback inside connection::exec calls PQcancel on the cancelling thread; the
 * server stops the query and this returns at once. Inline calls get a token that never stops.
 */
struct pg_catalog_search {
  connection_pool* connections;
  /// For demonstrations and tests: the server sleeps this long in every search.
  std::chrono::milliseconds server_delay{0};

  search_result operator()(std::stop_token stop, std::string query, int limit) const {
    auto db = connections->acquire();
    return search(*db, query, limit, std::move(stop), server_delay);
  }
};

/// Wraps pg_catalog_search for `pool`: `search(q, n)` inline, `co_await search.async_call(q, n)` on
/// the pool. Size `connections` to the pool's thread count so no worker waits.
///
/// A cancelled running search keeps smartasync's safe default (the caller is completed once
/// the call has returned): with the query interrupted on the server, that is milliseconds,
/// and nothing needs to be abandoned.
inline smartasync::smart_async_function<pg_catalog_search> make_pg_search(smartasync::blocking_pool& pool,
                                                                    connection_pool& connections,
                                                                    std::chrono::milliseconds server_delay = {}) {
  return smartasync::smart_async(pool, pg_catalog_search{&connections, server_delay},
                                 {.name = "pg catalog search", .on_loop = smartasync::loop_call_policy::report});
}

/// The readiness probe: a checked connection (reconnecting if needed) and the catalogue table.
struct pg_catalog_probe {
  connection_pool* connections;

  void operator()(std::stop_token stop) const {
    auto db = connections->acquire();
    (void)db->exec("SELECT 1 FROM packages LIMIT 1", {}, std::move(stop));
  }
};

inline smartasync::smart_async_function<pg_catalog_probe> make_pg_probe(smartasync::blocking_pool& pool,
                                                                  connection_pool& connections) {
  return smartasync::smart_async(pool, pg_catalog_probe{&connections}, {.name = "pg readiness probe"});
}

} // namespace pg_search

#endif // PG_SEARCH_PG_CATALOG_SEARCH_HPP
