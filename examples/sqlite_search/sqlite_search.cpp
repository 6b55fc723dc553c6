// sqlite_search - full-text search of the package catalogue from the command line.
//
// The program demonstrates the synchronous half of smartasync: the wrapped search is called
// like the plain function it wraps. This thread runs no event loop, so the call runs inline,
// right here, with no thread hop and no pool work.
//
//   sqlite_search [--db FILE] [--limit N] [--] QUERY...     (--help for details)
//
// Distributed under the Boost Software License, Version 1.0.
#include "catalog_search.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

int main(int argc, char** argv) {
  std::string db_file = "catalog.db";
  std::vector<std::string> words;
  int limit = 10;

  CLI::App app{"Full-text search of the package catalogue (FTS5 syntax: words, \"a phrase\", prefix*, OR, NOT)."};
  app.add_option("--db", db_file, "catalogue file (see catalog_import)")
      ->check(CLI::ExistingFile)
      ->capture_default_str();
  app.add_option("--limit", limit, "most results to print")
      ->check(CLI::Range(1, catalog::catalog_db::max_limit))->capture_default_str();
  app.add_option("query", words, "the query; several words are joined with spaces (use -- before a query starting "
                                 "with -)")
      ->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2; // --help: 0; any bad option: 2
  }
  std::string query;
  for (const auto& w : words)
    query += (query.empty() ? "" : " ") + w;

  try {
    // 1. The blocking pieces the application already had: one connection is enough here.
    catalog::connection_pool connections(db_file, 1);
    // 2. The same wrapper the server uses. Its pool threads start now but stay idle.
    smartasync::blocking_pool pool{1, 16};
    auto search = sqlite_search::make_catalog_search(pool, connections);

    // 3. A plain call on a plain thread: inline.
    const auto hits = search(query, limit);

    fmt::print("{} result{} for '{}' in {}\n", hits.size(), hits.size() == 1 ? "" : "s", query, db_file);
    for (const auto& h : hits) {
      fmt::print("{:>8.2f}  {} {} [{}]\n", h.score, h.name, h.version, h.section);
      std::string snippet = h.snippet;
      std::replace(snippet.begin(), snippet.end(), '\n', ' ');
      fmt::print("          {}\n", snippet);
    }
    return EXIT_SUCCESS;
  } catch (const catalog::invalid_query& e) {
    fmt::print(stderr, "sqlite_search: {}\n", e.what());
    return 2;
  } catch (const catalog::error& e) {
    fmt::print(stderr, "sqlite_search: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
