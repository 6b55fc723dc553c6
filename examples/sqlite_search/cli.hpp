// cli.hpp - CLI11 pieces shared by the search programs (SQLite and PostgreSQL backends).
// Distributed under the Boost Software License, Version 1.0.
#ifndef SQLITE_SEARCH_CLI_HPP
#define SQLITE_SEARCH_CLI_HPP

#include "search_server.hpp"

#include <CLI/CLI.hpp>
#include <asio/ip/address.hpp>
#include <fmt/format.h>

#include <sys/resource.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace sqlite_search {

/// Accepts a numeric IPv4 or IPv6 address, the only kind the server binds to.
inline CLI::Validator ip_address_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        asio::error_code ec;
        (void)asio::ip::make_address(text, ec);
        return ec ? "'" + text + "' is not an IPv4 or IPv6 address" : std::string();
      },
      "IP", "IP address");
}

/// `--db FILE`: the SQLite catalogue a program searches (it must exist; catalog_import makes it).
inline CLI::Option* add_db_option(CLI::App& app, std::string& db_file) {
  return app.add_option("--db", db_file, "catalogue file (see catalog_import)")
      ->check(CLI::ExistingFile)
      ->capture_default_str();
}

/// The HTTP server's options, the same for every backend: add() declares them on a CLI11 app,
/// apply() copies the parsed values into server_options (CLI11 parses milliseconds as ints).
struct server_cli {
  int port = 0;
  std::size_t threads = 4;
  int idle_ms = 0, first_byte_ms = 0, request_ms = 0, grace_ms = 0, search_timeout_ms = 0;

  /// `threads_help` says what one pool thread holds (a connection of the backend).
  void add(CLI::App& app, server_options& options, const std::string& threads_help) {
    idle_ms = static_cast<int>(options.idle_timeout.count());
    first_byte_ms = static_cast<int>(options.first_byte_timeout.count());
    request_ms = static_cast<int>(options.request_timeout.count());
    grace_ms = static_cast<int>(options.shutdown_grace.count());
    search_timeout_ms = static_cast<int>(options.search_timeout.count());
    app.add_option("--port", port, "TCP port; 0 picks a free one (printed at start)")->check(CLI::Range(0, 65535))
        ->capture_default_str();
    app.add_option("--address", options.address, "IP address to listen on")
        ->check(ip_address_validator())->capture_default_str();
    app.add_option("--threads", threads, threads_help)->check(CLI::Range(1, 256))->capture_default_str();
    app.add_option("--idle-timeout-ms", idle_ms, "close a keep-alive connection idle this long")
        ->check(CLI::Range(1, 3'600'000))->capture_default_str();
    app.add_option("--first-byte-timeout-ms", first_byte_ms,
                   "close a new connection that sends nothing this long (silent clients)")
        ->check(CLI::Range(1, 3'600'000))->capture_default_str();
    app.add_option("--request-timeout-ms", request_ms,
                   "a request must be complete this long after its first byte, or 408 (slow clients)")
        ->check(CLI::Range(1, 600'000))->capture_default_str();
    app.add_option("--max-connections", options.max_connections,
                   "connections served at once; at it, the one waiting longest for a request is closed for a new "
                   "one, or 503 with Retry-After if all are answering (keep under ulimit -n)")
        ->check(CLI::Range(1, 1'000'000))->capture_default_str();
    app.add_option("--shutdown-grace-ms", grace_ms,
                   "at SIGTERM/SIGINT, running searches get this long to finish (queued ones are answered 503 at "
                   "once)")
        ->check(CLI::Range(0, 600'000))->capture_default_str();
    app.add_option("--search-timeout-ms", search_timeout_ms,
                   "cancel a search not answered this long after it was submitted, and answer 504 (0: no limit)")
        ->check(CLI::Range(0, 600'000))->capture_default_str();
    app.add_flag("--inline", options.inline_search, "call the search on the event loop (the mistake, for comparison)");
  }

  void apply(server_options& options) const {
    options.port = static_cast<std::uint16_t>(port);
    options.idle_timeout = std::chrono::milliseconds(idle_ms);
    options.first_byte_timeout = std::chrono::milliseconds(first_byte_ms);
    options.request_timeout = std::chrono::milliseconds(request_ms);
    options.shutdown_grace = std::chrono::milliseconds(grace_ms);
    options.search_timeout = std::chrono::milliseconds(search_timeout_ms);
  }

  /// Each connection is a descriptor: a cap above the process's limit cannot be reached, and
  /// accept() fails (and backs off) first. Says so now rather than under load.
  void warn_about_descriptors(const server_options& options, const char* program) const {
    if (rlimit nofile{}; ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
                         options.max_connections + 16 + 4 * threads > nofile.rlim_cur)
      fmt::print(stderr,
                 "{}: note: --max-connections {} is above what the descriptor limit {} allows "
                 "(ulimit -n); past it accept() fails and the server retries every {} ms\n",
                 program, options.max_connections, nofile.rlim_cur, options.accept_backoff.count());
  }
};

} // namespace sqlite_search

#endif // SQLITE_SEARCH_CLI_HPP
