// sqlite_search_server - the package catalogue's full-text search over HTTP.
//
// The program demonstrates the asynchronous half of smartasync: the coroutine handling a
// request awaits the same wrapped search the CLI calls inline, `co_await search.async_call(q, n)`,
// so SQLite runs on a blocking pool while the event loop keeps serving every other connection.
// With --inline it calls `search(q, n)` on the loop instead (the classic mistake): smartasync
// reports it, and /health stalls whenever a search runs.
//
//   sqlite_search_server [--db FILE] [--port N] [--address A] [--threads N] [--inline] ...
//   sqlite_search_server --help      (every option, its range and default)
//
//   curl 'http://127.0.0.1:PORT/search?q=asio&limit=5'
//   curl 'http://127.0.0.1:PORT/health'     liveness: the event loop answers
//   curl 'http://127.0.0.1:PORT/ready'      readiness: a search through the pool works
//
// The program around the store (options, the pool, the event loop, signals) is serve_main,
// shared with ../pg_search's server; this file is what makes it the SQLite one.
//
// Distributed under the Boost Software License, Version 1.0.
#include "catalog_search.hpp"
#include "cli.hpp"
#include "serve_main.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

namespace {

class sqlite_store final : public sqlite_search::served_store {
  std::string db_file_ = "catalog.db";
  bool trace_ = false;
  std::optional<catalog::connection_pool> connections_;

public:
  sqlite_store()
      : served_store({.name = "sqlite_search_server",
                      .about = "The package catalogue's full-text search over HTTP (GET /search, /health, /ready).",
                      .threads_help = "blocking-pool threads, one SQLite connection each"}) {}

  void add_options(CLI::App& app) override {
    sqlite_search::add_db_option(app, db_file_);
    app.add_flag("--trace", trace_,
                 "log every search from inside its offloaded call, with its request's id (carried to "
                 "the pool worker by smartasync, as smartasync::request_id)");
  }

  sqlite_search::search_backend open(smartasync::blocking_pool& pool, std::size_t threads) override {
    // One SQLite connection per pool thread, so no search waits for a connection.
    connections_.emplace(db_file_, threads);
    std::function<void(const std::string&)> trace_line;
    if (trace_)
      trace_line = [](const std::string& line) { fmt::print(stderr, "sqlite_search_server: {}\n", line); };
    return sqlite_search::make_backend(sqlite_search::make_catalog_search(pool, *connections_, trace_line),
                                       sqlite_search::make_catalog_probe(pool, *connections_));
  }

  std::size_t records() override { return connections_->acquire()->size(); }
};

} // namespace

int main(int argc, char** argv) {
  sqlite_store store;
  return sqlite_search::serve_main(argc, argv, store);
}
