// pg_search_server - the package catalogue's full-text search on PostgreSQL, over HTTP.
//
// The program demonstrates the asynchronous half with a networked database: the HTTP server
// of ../sqlite_search (the same search_server, the same options) awaits the PostgreSQL search
// on a blocking pool. A search cancelled while it runs (--search-timeout-ms, shutdown) is
// interrupted on the database server, not left running there.
//
//   pg_search_server --pg CONNINFO [--port N] [--threads N] [--search-timeout-ms T] ...
//   curl 'http://127.0.0.1:PORT/search?q=asio&limit=5'
//
// Distributed under the Boost Software License, Version 1.0.
#include "pg_catalog_search.hpp"

#include "cli.hpp"
#include "search_server.hpp"

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  pg_search::connection_options connect;
  sqlite_search::server_options options;
  options.log = [](const std::string& line) { std::fprintf(stderr, "pg_search_server: %s\n", line.c_str()); };
  sqlite_search::server_cli cli;
  int connect_timeout = 5;
  int delay_ms = 0;

  CLI::App app{"The package catalogue's full-text search on PostgreSQL over HTTP (GET /search, /health, /ready)."};
  app.add_option("--pg", connect.conninfo, "libpq connection string or URI")->required();
  app.add_option("--connect-timeout", connect_timeout, "seconds to wait for the database server (unless --pg sets it)")
      ->check(CLI::Range(1, 600))->capture_default_str();
  app.add_option("--debug-delay-ms", delay_ms,
                 "for demonstrations and tests: every search first sleeps this long on the database server")
      ->check(CLI::Range(0, 600'000))->capture_default_str();
  cli.add(app, options, "blocking-pool threads, one PostgreSQL connection each (opened on first use)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2;
  }
  cli.apply(options);
  cli.warn_about_descriptors(options, "pg_search_server");
  connect.connect_timeout = std::chrono::seconds(connect_timeout);
  connect.application_name = "pg_search_server";

  try {
    // 1. One connection per pool thread, opened on first use. One is opened now, so that a
    //    server that is down or a catalogue that is missing is said at once, not at the first
    //    request.
    pg_search::connection_pool connections(connect, cli.threads);
    const std::size_t records = pg_search::count_records(*connections.acquire());
    // 2. The blocking pool and the wrapped search (the same wrapper the CLI calls inline).
    smartasync::blocking_pool pool{cli.threads, 1024};
    auto search = pg_search::make_pg_search(pool, connections, std::chrono::milliseconds(delay_ms));
    auto probe = pg_search::make_pg_probe(pool, connections);

    // 3. The server of ../sqlite_search, given this backend.
    asio::io_context io{1};
    sqlite_search::search_server server(io, sqlite_search::make_backend(search, probe), options);
    server.start();

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const asio::error_code& ec, int signal) {
      if (!ec) {
        fmt::print("pg_search_server: signal {}, shutting down (running searches get {} ms)\n", signal,
                   options.shutdown_grace.count());
        std::fflush(stdout);
        server.stop();
      }
    });

    fmt::print("pg_search_server listening on http://{}:{}/ ({} searches, {} pool threads, {} records)\n",
               options.address, server.port(), options.inline_search ? "INLINE" : "offloaded", cli.threads,
               records);
    std::fflush(stdout);
    io.run();
    const auto summary = server.shutdown_summary();
    fmt::print("pg_search_server: stopped after {} requests ({} timed out); searches in flight at shutdown: {} "
               "answered, {} cancelled (503: {} queued, {} past the grace)\n",
               server.requests(), server.timed_out(), summary.finished,
               summary.cancelled_queued + summary.cancelled_running, summary.cancelled_queued,
               summary.cancelled_running);
    return EXIT_SUCCESS;
  } catch (const std::exception& e) {
    fmt::print(stderr, "pg_search_server: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
