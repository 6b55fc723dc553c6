// sqlite_search - full-text search of the package catalogue from the command line.
//
// The program demonstrates the synchronous half of smartasync: the wrapped search is called
// like the plain function it wraps. This thread runs no event loop, so the call runs inline,
// right here, with no thread hop and no pool work.
//
//   sqlite_search [--db FILE] [--limit N] [--] QUERY...     (--help for details)
//
// The command line and the printing are search_main, shared with ../pg_search's CLI; this
// file is what makes it the SQLite one.
//
// Distributed under the Boost Software License, Version 1.0.
#include "catalog_search.hpp"
#include "cli.hpp"
#include "search_main.hpp"

#include <string>
#include <vector>

namespace {

class sqlite_store final : public sqlite_search::searched_store {
  std::string db_file_ = "catalog.db";

public:
  sqlite_store()
      : searched_store(
            {.name = "sqlite_search",
             .about = "Full-text search of the package catalogue (FTS5 syntax: words, \"a phrase\", prefix*, OR, NOT).",
             .max_limit = catalog::catalog_db::max_limit}) {}

  void add_options(CLI::App& app) override { sqlite_search::add_db_option(app, db_file_); }

  std::vector<catalog::search_hit> search(const std::string& query, int limit) override {
    // 1. The blocking pieces the application already had: one connection is enough here.
    catalog::connection_pool connections(db_file_, 1);
    // 2. The same wrapper the server uses. Its pool threads start now but stay idle.
    smartasync::blocking_pool pool{1, 16};
    auto search = sqlite_search::make_catalog_search(pool, connections);
    // 3. A plain call on a plain thread: inline.
    return search(query, limit);
  }

  std::string searched() const override { return db_file_; }
};

} // namespace

int main(int argc, char** argv) {
  sqlite_store store;
  return sqlite_search::search_main(argc, argv, store);
}
