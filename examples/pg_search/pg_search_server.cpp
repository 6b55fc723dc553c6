// pg_search_server - the package catalogue's full-text search on PostgreSQL, over HTTP.
//
// The program demonstrates the asynchronous half with a networked database: the HTTP server
// of ../sqlite_search (the same search_server, the same options, the same serve_main) awaits
// the PostgreSQL search on a blocking pool. A search cancelled while it runs
// (--search-timeout-ms, shutdown) is interrupted on the database server, not left running there.
//
//   pg_search_server --pg CONNINFO [--port N] [--threads N] [--search-timeout-ms T] ...
//   curl 'http://127.0.0.1:PORT/search?q=asio&limit=5'
//
// Distributed under the Boost Software License, Version 1.0.
#include "pg_catalog_search.hpp"

#include "serve_main.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstddef>
#include <optional>

namespace {

class pg_store final : public sqlite_search::served_store {
  pg_search::connection_options connect_;
  int connect_timeout_ = 5;
  int delay_ms_ = 0;
  std::optional<pg_search::connection_pool> connections_;

public:
  pg_store()
      : served_store(
            {.name = "pg_search_server",
             .about = "The package catalogue's full-text search on PostgreSQL over HTTP (GET /search, /health, /ready).",
             .threads_help = "blocking-pool threads, one PostgreSQL connection each (opened on first use)"}) {}

  void add_options(CLI::App& app) override {
    app.add_option("--pg", connect_.conninfo, "libpq connection string or URI")->required();
    app.add_option("--connect-timeout", connect_timeout_,
                   "seconds to wait for the database server (unless --pg sets it)")
        ->check(CLI::Range(1, 600))->capture_default_str();
    app.add_option("--debug-delay-ms", delay_ms_,
                   "for demonstrations and tests: every search first sleeps this long on the database server")
        ->check(CLI::Range(0, 600'000))->capture_default_str();
  }

  sqlite_search::search_backend open(smartasync::blocking_pool& pool, std::size_t threads) override {
    connect_.connect_timeout = std::chrono::seconds(connect_timeout_);
    connect_.application_name = "pg_search_server";
    // One connection per pool thread, opened on first use. One is opened now (records()), so
    // that a server that is down or a catalogue that is missing is said at once, not at the
    // first request.
    connections_.emplace(connect_, threads);
    return sqlite_search::make_backend(
        pg_search::make_pg_search(pool, *connections_, std::chrono::milliseconds(delay_ms_)),
        pg_search::make_pg_probe(pool, *connections_));
  }

  std::size_t records() override { return pg_search::count_records(*connections_->acquire()); }
};

} // namespace

int main(int argc, char** argv) {
  pg_store store;
  return sqlite_search::serve_main(argc, argv, store);
}
