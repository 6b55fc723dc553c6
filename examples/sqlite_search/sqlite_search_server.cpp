// sqlite_search_server - the package catalogue's full-text search over HTTP.
//
// The program demonstrates the asynchronous half of smartasync: the coroutine handling a
// request awaits the same wrapped search the CLI calls inline, `co_await search.async(q, n)`,
// so SQLite runs on a blocking pool while the event loop keeps serving every other connection.
// With --inline it calls `search(q, n)` on the loop instead (the classic mistake): smartasync
// reports it, and /health stalls whenever a search runs.
//
//   sqlite_search_server [--db FILE] [--port N] [--address A] [--threads N] [--inline]
//
//   curl 'http://127.0.0.1:PORT/search?q=asio&limit=5'
//   curl 'http://127.0.0.1:PORT/health'
//
// Distributed under the Boost Software License, Version 1.0.
#include "catalog_search.hpp"
#include "search_server.hpp"

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
  std::size_t threads = 4;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc)
          throw std::invalid_argument(fmt::format("{} needs a value", arg));
        return argv[++i];
      };
      if (arg == "--db")
        db_file = value();
      else if (arg == "--port")
        options.port = static_cast<std::uint16_t>(std::stoul(value()));
      else if (arg == "--address")
        options.address = value();
      else if (arg == "--threads")
        threads = std::stoul(value());
      else if (arg == "--inline")
        options.inline_search = true;
      else
        throw std::invalid_argument(fmt::format("unknown argument '{}'", arg));
    }
    if (threads == 0)
      throw std::invalid_argument("--threads must be at least 1");
  } catch (const std::exception& e) {
    fmt::print(stderr,
               "sqlite_search_server: {}\n"
               "usage: {} [--db FILE] [--port N (0: any free port)] [--address A] [--threads N] [--inline]\n",
               e.what(), argv[0]);
    return 2;
  }

  try {
    // 1. One SQLite connection per pool thread, so no search waits for a connection.
    catalog::connection_pool connections(db_file, threads);
    // 2. The blocking pool and the wrapped search (the same wrapper the CLI calls inline).
    smartasync::blocking_pool pool{threads, 1024};
    auto search = sqlite_search::make_catalog_search(pool, connections);

    // 3. One event-loop thread serves every connection.
    asio::io_context io{1};
    sqlite_search::search_server server(io, sqlite_search::make_backend(search), options);
    server.start();

    // 4. SIGINT / SIGTERM: stop accepting, close connections, let run() return.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const asio::error_code& ec, int signal) {
      if (!ec) {
        fmt::print("sqlite_search_server: signal {}, shutting down\n", signal);
        std::fflush(stdout);
        server.stop();
      }
    });

    fmt::print("sqlite_search_server listening on http://{}:{}/ ({} searches, {} pool threads, {} records)\n",
               options.address, server.port(), options.inline_search ? "INLINE" : "offloaded", threads,
               connections.acquire()->size());
    std::fflush(stdout);
    io.run();
    fmt::print("sqlite_search_server: stopped after {} requests\n", server.requests());
    return EXIT_SUCCESS;
  } catch (const std::exception& e) {
    fmt::print(stderr, "sqlite_search_server: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
