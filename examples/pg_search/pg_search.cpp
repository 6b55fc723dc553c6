// pg_search - full-text search of the package catalogue on PostgreSQL, from the command line.
//
// The program demonstrates the synchronous half of smartasync with a networked database: the
// wrapped search is called like the plain function it wraps, inline on this thread. The
// command line and the printing are ../sqlite_search's search_main.
//
//   pg_search --pg CONNINFO [--limit N] [--] QUERY...      (--help for details)
//
// Distributed under the Boost Software License, Version 1.0.
#include "pg_catalog_search.hpp"

#include "search_main.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace {

class pg_store final : public sqlite_search::searched_store {
  std::string conninfo_;
  int connect_timeout_ = 5;

public:
  pg_store()
      : searched_store({.name = "pg_search",
                        .about = "Full-text search of the package catalogue on PostgreSQL (to_tsquery syntax: word, "
                                 "a & b, a | b, !a, a <-> b, pre:*).",
                        .max_limit = pg_search::max_limit,
                        .score_decimals = 4}) {}

  void add_options(CLI::App& app) override {
    app.add_option("--pg", conninfo_, "libpq connection string or URI")->required();
    app.add_option("--connect-timeout", connect_timeout_, "seconds to wait for the server (unless --pg sets it)")
        ->check(CLI::Range(1, 600))->capture_default_str();
  }

  std::vector<catalog::search_hit> search(const std::string& query, int limit) override {
    // 1. One connection (opened by the first call) and the same wrapper the server uses.
    pg_search::connection_pool connections(
        {.conninfo = conninfo_, .connect_timeout = std::chrono::seconds(connect_timeout_)}, 1);
    smartasync::blocking_pool pool{1, 16};
    auto search = pg_search::make_pg_search(pool, connections);
    // 2. A plain call on a plain thread: inline.
    return search(query, limit);
  }
};

} // namespace

int main(int argc, char** argv) {
  pg_store store;
  return sqlite_search::search_main(argc, argv, store);
}
