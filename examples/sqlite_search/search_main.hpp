// search_main.hpp - the main of a command-line search, whatever store its backend searches.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SQLITE_SEARCH_SEARCH_MAIN_HPP
#define SQLITE_SEARCH_SEARCH_MAIN_HPP

#include "catalog/record.hpp"

#include <string>
#include <vector>

namespace CLI {
class App;
} // namespace CLI

namespace sqlite_search {

/// Names a command-line search program and says how it prints its results.
struct search_program {
  const char* name;       ///< e.g. "sqlite_search": the prefix of its error messages
  const char* about;      ///< --help's first line (the store's query syntax)
  int max_limit;          ///< the largest --limit the store accepts
  int score_decimals = 2; ///< how many decimals the store's scores are printed with
};

/// What a command-line search's backend adds to search_main: its options and its search.
class searched_store {
public:
  explicit searched_store(const search_program& program) : program_(program) {}
  virtual ~searched_store() = default;

  const search_program& program() const noexcept { return program_; }

  /// Declares the store's own options (which database, how to reach it) on the command line.
  virtual void add_options(CLI::App& app) = 0;

  /// Opens the store and runs one search, called on this plain thread (so inline).
  /**
   * A query the store's syntax refuses throws catalog::invalid_query (exit 2); any other
   * exception ends the program with its message (exit 1).
   */
  virtual std::vector<catalog::search_hit> search(const std::string& query, int limit) = 0;

  /// What the results line names as searched ("N results for 'q' in FILE"); empty: nothing.
  virtual std::string searched() const { return {}; }

private:
  search_program program_;
};

/**
 * The whole program around a searched_store: --limit and the query words (joined with spaces,
 * `--` before a query starting with -), one search, its hits printed with their snippets.
 *
 * @returns the process's exit status: 0 (also for --help), 1 when the search failed, 2 for a
 * bad command line or a query the store refuses.
 */
int search_main(int argc, char** argv, searched_store& store);

} // namespace sqlite_search

#endif // SQLITE_SEARCH_SEARCH_MAIN_HPP
