// search_main.cpp - the main of a command-line search, whatever store its backend searches.
// Distributed under the Boost Software License, Version 1.0.
#include "search_main.hpp"

#include "catalog/errors.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <exception>

namespace sqlite_search {

int search_main(int argc, char** argv, searched_store& store) {
  const search_program& program = store.program();
  std::vector<std::string> words;
  int limit = 10;

  CLI::App app{program.about, program.name};
  store.add_options(app);
  app.add_option("--limit", limit, "most results to print")
      ->check(CLI::Range(1, program.max_limit))->capture_default_str();
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
    const auto hits = store.search(query, limit);
    const std::string searched = store.searched();
    fmt::print("{} result{} for '{}'{}{}\n", hits.size(), hits.size() == 1 ? "" : "s", query,
               searched.empty() ? "" : " in ", searched);
    for (const auto& h : hits) {
      fmt::print("{:>8.{}f}  {} {} [{}]\n", h.score, program.score_decimals, h.name, h.version, h.section);
      std::string snippet = h.snippet;
      std::replace(snippet.begin(), snippet.end(), '\n', ' ');
      fmt::print("          {}\n", snippet);
    }
    return EXIT_SUCCESS;
  } catch (const catalog::invalid_query& e) {
    fmt::print(stderr, "{}: {}\n", program.name, e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}: {}\n", program.name, e.what());
    return EXIT_FAILURE;
  }
}

} // namespace sqlite_search
