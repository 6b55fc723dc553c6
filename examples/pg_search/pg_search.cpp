// pg_search - full-text search of the package catalogue on PostgreSQL, from the command line.
//
// The program demonstrates the synchronous half of smartasync with a networked database: the
// wrapped search is called like the plain function it wraps, inline on this thread.
//
//   pg_search --pg CONNINFO [--limit N] [--] QUERY...      (--help for details)
//
// Distributed under the Boost Software License, Version 1.0.
#include "pg_catalog_search.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  std::string conninfo;
  std::vector<std::string> words;
  int limit = 10;
  int connect_timeout = 5;

  CLI::App app{"Full-text search of the package catalogue on PostgreSQL (to_tsquery syntax: word, a & b, a | b, !a, "
               "a <-> b, pre:*)."};
  app.add_option("--pg", conninfo, "libpq connection string or URI")->required();
  app.add_option("--limit", limit, "most results to print")->check(CLI::Range(1, pg_search::max_limit))
      ->capture_default_str();
  app.add_option("--connect-timeout", connect_timeout, "seconds to wait for the server (unless --pg sets it)")
      ->check(CLI::Range(1, 600))->capture_default_str();
  app.add_option("query", words, "the query; several words are joined with spaces (use -- before a query starting "
                                 "with -)")
      ->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2;
  }
  std::string query;
  for (const auto& w : words)
    query += (query.empty() ? "" : " ") + w;

  try {
    // 1. One connection (opened by the first call) and the same wrapper the server uses.
    pg_search::connection_pool connections(
        {.conninfo = conninfo, .connect_timeout = std::chrono::seconds(connect_timeout)}, 1);
    smartasync::blocking_pool pool{1, 16};
    auto search = pg_search::make_pg_search(pool, connections);

    // 2. A plain call on a plain thread: inline.
    const auto hits = search(query, limit);

    fmt::print("{} result{} for '{}'\n", hits.size(), hits.size() == 1 ? "" : "s", query);
    for (const auto& h : hits) {
      fmt::print("{:>8.4f}  {} {} [{}]\n", h.score, h.name, h.version, h.section);
      std::string snippet = h.snippet;
      std::replace(snippet.begin(), snippet.end(), '\n', ' ');
      fmt::print("          {}\n", snippet);
    }
    return EXIT_SUCCESS;
  } catch (const catalog::invalid_query& e) {
    fmt::print(stderr, "pg_search: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "pg_search: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
