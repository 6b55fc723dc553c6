// serve_main.cpp - the main of a search server, whatever store its backend searches.
// Distributed under the Boost Software License, Version 1.0.
#include "serve_main.hpp"

#include "cli.hpp"

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

namespace sqlite_search {

int serve_main(int argc, char** argv, served_store& store) {
  const server_program& program = store.program();
  const std::string name = program.name;
  server_options options;
  options.log = [name](const std::string& line) { fmt::print(stderr, "{}: {}\n", name, line); };
  server_cli cli;

  // Every value is range-checked before anything starts: a wrapped-around port or a pool of
  // 100 000 threads is a clear error (exit 2), not a surprise.
  CLI::App app{program.about, name};
  store.add_options(app);
  cli.add(app, options, program.threads_help);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2; // --help: 0; any bad option: 2
  }
  cli.apply(options);
  cli.warn_about_descriptors(options, program.name);

  try {
    // 1. The blocking pool, and the store's search wrapped for it (the same wrapper its CLI
    //    calls inline), one connection per pool thread so that no search waits for one.
    smartasync::blocking_pool pool{cli.threads, 1024};
    search_backend backend = store.open(pool, cli.threads);
    const std::size_t records = store.records();
    // GET /metrics: the pool, for a Prometheus scraper.
    smartasync::metrics_registry metrics;
    metrics.add("search", pool);
    options.metrics = &metrics;

    // 2. One event-loop thread serves every connection.
    asio::io_context io{1};
    search_server server(io, std::move(backend), options);
    server.start();

    // 3. SIGINT / SIGTERM: stop accepting, answer queued searches 503 at once, give running
    //    ones the grace, then let run() return.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const asio::error_code& ec, int signal) {
      if (!ec) {
        fmt::print("{}: signal {}, shutting down (running searches get {} ms)\n", name, signal,
                   options.shutdown_grace.count());
        std::fflush(stdout);
        server.stop();
      }
    });

    fmt::print("{} listening on http://{}:{}/ ({} searches, {} pool threads, {} records)\n", name, options.address,
               server.port(), options.inline_search ? "INLINE" : "offloaded", cli.threads, records);
    std::fflush(stdout);
    io.run();
    const auto summary = server.shutdown_summary();
    fmt::print("{}: stopped after {} requests ({} timed out); searches in flight at shutdown: {} answered, {} "
               "cancelled (503: {} queued, {} past the grace)\n",
               name, server.requests(), server.timed_out(), summary.finished,
               summary.cancelled_queued + summary.cancelled_running, summary.cancelled_queued,
               summary.cancelled_running);
    return EXIT_SUCCESS;
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}: {}\n", name, e.what());
    return EXIT_FAILURE;
  }
}

} // namespace sqlite_search
