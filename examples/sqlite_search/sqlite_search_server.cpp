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
// Distributed under the Boost Software License, Version 1.0.
#include "catalog_search.hpp"
#include "search_server.hpp"

#include "cli.hpp"

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
  std::string db_file = "catalog.db";
  sqlite_search::server_options options;
  sqlite_search::server_cli cli;

  // Every value is range-checked before anything starts: a wrapped-around port or a pool of
  // 100 000 threads is a clear error (exit 2), not a surprise.
  CLI::App app{"The package catalogue's full-text search over HTTP (GET /search, /health, /ready)."};
  app.add_option("--db", db_file, "catalogue file (see catalog_import)")
      ->check(CLI::ExistingFile)
      ->capture_default_str();
  cli.add(app, options, "blocking-pool threads, one SQLite connection each");
  bool trace = false;
  app.add_flag("--trace", trace,
               "log every search from inside its offloaded call, with its request's id (carried to "
               "the pool worker by smartasync::carry_context)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2; // --help: 0; any bad option: 2
  }
  cli.apply(options);
  cli.warn_about_descriptors(options, "sqlite_search_server");
  const std::size_t threads = cli.threads;

  try {
    // 1. One SQLite connection per pool thread, so no search waits for a connection.
    catalog::connection_pool connections(db_file, threads);
    // 2. The blocking pool and the wrapped search (the same wrapper the CLI calls inline).
    smartasync::blocking_pool pool{threads, 1024};
    std::function<void(const std::string&)> trace_line;
    if (trace)
      trace_line = [](const std::string& line) { fmt::print(stderr, "sqlite_search_server: {}\n", line); };
    auto search = sqlite_search::make_catalog_search(pool, connections, trace_line);
    auto probe = sqlite_search::make_catalog_probe(pool, connections);

    // 3. One event-loop thread serves every connection.
    asio::io_context io{1};
    sqlite_search::search_server server(io, sqlite_search::make_backend(search, probe), options);
    server.start();

    // 4. SIGINT / SIGTERM: stop accepting, answer queued searches 503 at once, give running
    //    ones the grace, then let run() return.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const asio::error_code& ec, int signal) {
      if (!ec) {
        fmt::print("sqlite_search_server: signal {}, shutting down (running searches get {} ms)\n", signal,
                   options.shutdown_grace.count());
        std::fflush(stdout);
        server.stop();
      }
    });

    fmt::print("sqlite_search_server listening on http://{}:{}/ ({} searches, {} pool threads, {} records)\n",
               options.address, server.port(), options.inline_search ? "INLINE" : "offloaded", threads,
               connections.acquire()->size());
    std::fflush(stdout);
    io.run();
    const auto summary = server.shutdown_summary();
    fmt::print("sqlite_search_server: stopped after {} requests; searches in flight at shutdown: {} answered, "
               "{} cancelled (503: {} queued, {} past the grace)\n",
               server.requests(), summary.finished, summary.cancelled_queued + summary.cancelled_running,
               summary.cancelled_queued, summary.cancelled_running);
    return EXIT_SUCCESS;
  } catch (const std::exception& e) {
    fmt::print(stderr, "sqlite_search_server: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
