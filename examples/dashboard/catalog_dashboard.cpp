// catalog_dashboard - search the catalogue and sync it live, in the browser, from one Asio server.
//
// The program demonstrates the whole story of the two examples it joins: the blocking SQLite
// search (sqlite_search) and the blocking libcurl page fetch (catalog_sync), each wrapped once
// with smartasync::smart_async, awaited by coroutines on one io_context thread, while the sync's
// progress flows to any number of browsers as Server-Sent Events and searches stay fast.
//
//   catalog_dashboard                       the demo: a local paginated API in the process
//   catalog_dashboard --source NAME=URL ... syncs only the URLs given here
//   catalog_dashboard --help
//
// then open the printed http://127.0.0.1:PORT/ in a browser.
//
// Distributed under the Boost Software License, Version 1.0.
#include "dashboard.hpp"

#include "catalog_search.hpp"
#include "cli.hpp"
#include "paginated_server.hpp"

#include <catalog/catalog_db.hpp>
#include <catalog/connection_pool.hpp>
#include <catalog/generator.hpp>

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

// How many records the catalogue holds: blocking, so wrapped like the search.
struct catalog_count {
  catalog::connection_pool* connections;
  std::size_t operator()() const { return connections->acquire()->size(); }
};

} // namespace

int main(int argc, char** argv) {
  std::string db_file = "catalog.db";
  std::vector<std::string> source_specs;
  std::vector<std::string> allowed_hosts;
  std::string style = "offset";
  std::size_t concurrency = 4, page_size = 100, attempts = 5, demo_records = 3000;
  int retry_base_ms = 100, demo_latency_ms = 20, sync_nice = 10;
  double demo_faults = 0.03;
  sqlite_search::server_options options;
  options.port = 8080;
  sqlite_search::server_cli cli;
  cli.port = 8080;

  CLI::App app{"The catalogue dashboard: search as you type and a live sync, in the browser (open the printed URL).\n"
               "Without --source it serves a demo: two local paginated APIs in the process (the catalogue,\n"
               "and an edited copy of it), with latency and injected 429/5xx faults.",
               "catalog_dashboard"};
  app.add_option("--db", db_file, "catalogue file (created when missing)")->capture_default_str();
  app.add_option("--source", source_specs,
                 "NAME=URL: a paginated API the page may sync from (repeatable); only these can be synced")
      ->each([](const std::string& spec) {
        if (spec.find('=') == std::string::npos || spec.front() == '=' || spec.back() == '=')
          throw CLI::ValidationError("--source", "'" + spec + "' is not NAME=URL");
      });
  app.add_option("--style", style, "pagination of the sources: offset, page or cursor")
      ->check(CLI::IsMember({"offset", "page", "cursor"}))
      ->capture_default_str();
  app.add_option("--concurrency", concurrency, "page requests in flight")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--page-size", page_size, "items per page asked for")->check(CLI::Range(1, 10000))->capture_default_str();
  app.add_option("--attempts", attempts, "attempts per page, the first included")->check(CLI::Range(1, 20))->capture_default_str();
  app.add_option("--retry-base-ms", retry_base_ms, "first retry delay (doubles, with jitter)")
      ->check(CLI::Range(1, 60'000))
      ->capture_default_str();
  app.add_option("--sync-nice", sync_nice,
                 "nice value of the sync's threads (Linux): above 0, searches get the CPU first while a sync runs")
      ->check(CLI::Range(0, 19))
      ->capture_default_str();
  app.add_option("--allow-host", allowed_hosts,
                 "a Host name this server may be reached by besides loopback (e.g. when --address is not loopback)");
  const char* demo = "The demo sources (without --source)";
  app.add_option("--demo-records", demo_records, "records served")->check(CLI::Range(1, 1'000'000))->group(demo)
      ->capture_default_str();
  app.add_option("--demo-latency-ms", demo_latency_ms, "added to every page")->check(CLI::Range(0, 60'000))->group(demo)
      ->capture_default_str();
  app.add_option("--demo-faults", demo_faults, "probability of a 429, and of a 5xx, per request")
      ->check(CLI::Range(0.0, 0.5))
      ->group(demo)
      ->capture_default_str();
  cli.add(app, options, "search pool threads, one SQLite connection each");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2;
  }
  cli.apply(options);

  try {
    // 1. The sources. Without --source: two local paginated APIs, this process's own.
    std::vector<std::unique_ptr<catalog_sync::paginated_server>> demo_servers;
    std::vector<std::pair<std::string, std::string>> named_urls;
    if (source_specs.empty()) {
      catalog_sync::server_options api;
      api.latency = std::chrono::milliseconds(demo_latency_ms);
      api.jitter = std::chrono::milliseconds(demo_latency_ms / 2);
      api.rate_429 = api.rate_5xx = demo_faults;
      api.retry_after_seconds = 1;
      api.threads = concurrency + 4;
      api.thread_nice = 19; // they stand for a remote machine: their CPU is not the server's
      auto records = catalog::generate_catalog(demo_records, 7);
      auto edited = catalog_sync::edit_catalogue(records).first;
      demo_servers.push_back(std::make_unique<catalog_sync::paginated_server>(std::move(records), api));
      demo_servers.push_back(std::make_unique<catalog_sync::paginated_server>(std::move(edited), api));
      const auto parsed = catalog_sync::parse_pagination_style(style);
      named_urls = {{"demo", demo_servers[0]->url(*parsed)}, {"demo-edited", demo_servers[1]->url(*parsed)}};
    } else {
      for (const auto& spec : source_specs)
        named_urls.emplace_back(spec.substr(0, spec.find('=')), spec.substr(spec.find('=') + 1));
    }

    dashboard::dashboard_options board;
    board.db = db_file;
    board.allowed_hosts = allowed_hosts;
    if (options.address != "127.0.0.1" && options.address != "::1" && options.address != "0.0.0.0" &&
        options.address != "::")
      board.allowed_hosts.push_back(options.address);
    for (const auto& [name, url] : named_urls) {
      dashboard::source s{name, {}};
      s.options.url = url;
      s.options.style = *catalog_sync::parse_pagination_style(style);
      s.options.concurrency = concurrency;
      s.options.page_size = page_size;
      s.options.max_attempts = attempts;
      s.options.retry_base_delay = std::chrono::milliseconds(retry_base_ms);
      s.options.retry_max_delay = std::chrono::milliseconds(5000);
      s.options.thread_nice = sync_nice;
      board.sources.push_back(std::move(s));
    }

    // 2. The catalogue: created when missing (the searches open it read-only), one connection
    //    per search pool thread, and the wrapped search (the very one sqlite_search serves).
    if (!std::filesystem::exists(db_file)) {
      const catalog::catalog_db create(db_file, catalog::open_mode::read_write);
    }
    const std::size_t threads = cli.threads;
    catalog::connection_pool connections(db_file, threads);
    smartasync::blocking_pool pool{threads, 1024};
    auto search = sqlite_search::make_catalog_search(pool, connections);
    auto probe = sqlite_search::make_catalog_probe(pool, connections);
    auto count = smartasync::smart_async(pool, catalog_count{&connections}, {.name = "catalog count"});

    // 3. One loop thread: the search server, with the dashboard's routes in front. The page's
    //    live panel shows the search pool beside the sync's pool and lane, and the loop's lag.
    board.pools.push_back({"search (SQLite, one connection a thread)", &pool});
    asio::io_context io{1};
    dashboard::controller controller(io, std::move(board),
                                     [count]() -> asio::awaitable<std::size_t> { return count.async_call(); });
    options.routes = controller.routes();
    sqlite_search::search_server server(io, sqlite_search::make_backend(search, probe), options);
    server.start();

    // 4. SIGINT / SIGTERM: a sync in progress is cancelled (nothing committed, its clients are
    //    told), the event streams end, then the server stops and run() returns.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const asio::error_code& ec, int signal) {
      if (ec)
        return;
      fmt::print("catalog_dashboard: signal {}, stopping (a sync in progress is cancelled, nothing committed)\n",
                 signal);
      std::fflush(stdout);
      controller.stop([&server] { server.stop(); });
    });

    fmt::print("catalog_dashboard: open http://{}:{}/ ({} records in {}; sources: ", options.address.find(':') ==
                   std::string::npos ? options.address : "[" + options.address + "]",
               server.port(), connections.acquire()->size(), db_file);
    for (std::size_t i = 0; i < named_urls.size(); ++i)
      fmt::print("{}{}={}", i ? ", " : "", named_urls[i].first, named_urls[i].second);
    fmt::print(")\nport {}\n", server.port());
    std::fflush(stdout);
    io.run();
    const auto state = controller.state();
    fmt::print("catalog_dashboard: stopped after {} requests; last sync: {}\n", server.requests(),
               state["outcome"].is_null() ? std::string("none") : state["outcome"].dump());
    return EXIT_SUCCESS;
  } catch (const std::exception& e) {
    fmt::print(stderr, "catalog_dashboard: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
