// serve_main.hpp - the main of a search server, whatever store its backend searches.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SQLITE_SEARCH_SERVE_MAIN_HPP
#define SQLITE_SEARCH_SERVE_MAIN_HPP

#include "search_server.hpp"

#include <smartasync/blocking_pool.hpp>

#include <cstddef>

namespace CLI {
class App;
} // namespace CLI

namespace sqlite_search {

/// Names a search server program: the prefix of every line it prints and its --help.
struct server_program {
  const char* name;         ///< e.g. "sqlite_search_server"
  const char* about;        ///< --help's first line
  const char* threads_help; ///< what one pool thread holds (a connection of the store)
};

/// What a search server's backend adds to serve_main: its options and how it opens its store.
/**
 * The object outlives serve_main's blocking pool, so the connections it opens in open() are
 * closed only after every pool thread has stopped using them.
 */
class served_store {
public:
  explicit served_store(const server_program& program) : program_(program) {}
  virtual ~served_store() = default;

  const server_program& program() const noexcept { return program_; }

  /// Declares the store's own options (which database, how to reach it) on the command line.
  virtual void add_options(CLI::App& app) = 0;

  /// Opens the store for `threads` pool threads and wraps its search for `pool`.
  /**
   * Called once the command line is parsed and valid, before the server listens. Should reach
   * the store at once, so that a missing file or a server that is down is said at start, not
   * at the first request; an exception ends the program with its message (exit 1).
   */
  virtual search_backend open(smartasync::blocking_pool& pool, std::size_t threads) = 0;

  /// How many records the catalogue holds, printed when the server starts listening.
  virtual std::size_t records() = 0;

private:
  server_program program_;
};

/**
 * The whole program around a served_store: the server's options (cli.hpp), range-checked before
 * anything starts; the blocking pool; one event-loop thread serving every connection; SIGINT and
 * SIGTERM stopping it gracefully; a line when it listens and a count when it stops.
 *
 * @returns the process's exit status: 0 after a clean stop (or --help), 1 when the store or
 * the server failed, 2 for a bad command line.
 */
int serve_main(int argc, char** argv, served_store& store);

} // namespace sqlite_search

#endif // SQLITE_SEARCH_SERVE_MAIN_HPP
