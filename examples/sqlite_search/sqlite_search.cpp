// sqlite_search - full-text search of the package catalogue from the command line.
//
// The program demonstrates the synchronous half of smartasync: the wrapped search is called
// like the plain function it wraps. This thread runs no event loop, so the call runs inline,
// right here, with no thread hop and no pool work.
//
//   sqlite_search [--db FILE] [--limit N] QUERY
//
// Distributed under the Boost Software License, Version 1.0.
#include "catalog_search.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
  std::string db_file = "catalog.db";
  std::string query;
  int limit = 10;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (!options_done && (arg == "--db" || arg == "--limit") && i + 1 < argc) {
      if (arg == "--db")
        db_file = argv[++i];
      else
        limit = std::atoi(argv[++i]);
    } else if (!options_done && arg == "--") {
      options_done = true;
    } else if (!options_done && arg.starts_with("--")) {
      query.clear();
      break;
    } else {
      query += query.empty() ? "" : " ";
      query += arg;
    }
  }
  if (query.empty()) {
    fmt::print(stderr, "usage: {} [--db FILE] [--limit N] QUERY\n", argv[0]);
    return 2;
  }

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
