// sqlite_search_bench - is the server's loop free while searches run? Offloaded vs inline.
//
// The program demonstrates, with numbers, what `co_await search.async_call(q, n)` buys over calling
// `search(q, n)` on the loop. For each mode it starts the server in-process, drives it with
// many concurrent keep-alive clients issuing slow prefix searches over loopback, and meanwhile
// probes GET /health at a steady rate. It prints search throughput and latency, and /health
// latency, as a markdown table.
//
//   sqlite_search_bench [--db FILE] [--clients N] [--threads N] [--seconds S] [--quick]
//
// Without --db it builds a temporary catalogue: this machine's apt package list when available
// (the realistic case), else 60000 generated records. --quick: a smoke run of a few seconds.
//
// Distributed under the Boost Software License, Version 1.0.
#include "catalog/catalog_db.hpp"
#include "catalog/control_reader.hpp"
#include "catalog/generator.hpp"
#include "catalog_search.hpp"
#include "load_bench.hpp"

#include <smartasync/diagnostics.hpp>

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using sqlite_search::bench::clock_type;
using sqlite_search::bench::ms;

struct config {
  std::filesystem::path db;
  int clients = 16;
  std::size_t threads = 4;
  double seconds = 10;
  bool quick = false;
};

// Prefix queries match a large part of the catalogue, so bm25 ranks thousands of rows: a few
// tens of milliseconds each, the "slow query" of a real search box.
const std::vector<std::string> queries{"lib*", "a*", "s*", "p*", "c*", "d* OR e*", "m*", "t*", "g*", "n*"};

using sqlite_search::bench::mode_result;
using sqlite_search::bench::percentile;

mode_result run_mode(const config& cfg, bool inline_search) {
  catalog::connection_pool connections(cfg.db, cfg.threads);
  smartasync::blocking_pool pool{cfg.threads, 1024};
  // Wrapped here, per mode, so each mode's first inline call is reported.
  auto search = smartasync::smart_async(pool, sqlite_search::catalog_search{&connections},
                                        {.name = inline_search ? "catalog search (inline run)" : "catalog search"});
  return sqlite_search::bench::run_load(sqlite_search::make_backend(search), inline_search, queries, cfg.clients,
                                        cfg.seconds);
}

std::filesystem::path build_catalogue(const std::filesystem::path& file, bool quick) {
  catalog::catalog_db db(file, catalog::open_mode::read_write);
  auto sync = db.begin_sync();
  std::string origin;
  try {
    sync.add(catalog::load_apt_catalog());
    origin = "apt-cache dumpavail";
  } catch (const std::exception&) {
    const std::size_t n = quick ? 20000 : 60000;
    sync.add(catalog::generate_catalog(n));
    origin = fmt::format("{} generated records", n);
  }
  const auto counts = sync.commit();
  db.optimize();
  fmt::print("catalogue: {} records from {}\n", counts.added, origin);
  return file;
}

} // namespace

int main(int argc, char** argv) {
  config cfg;
  CLI::App app{"Offloaded vs inline: search throughput and /health latency of the search server under load."};
  app.add_option("--db", cfg.db, "catalogue file (default: build a temporary one)")->check(CLI::ExistingFile);
  auto* clients = app.add_option("--clients", cfg.clients, "concurrent search clients")->check(CLI::Range(1, 512))
      ->capture_default_str();
  app.add_option("--threads", cfg.threads, "blocking-pool threads")->check(CLI::Range(1, 256))->capture_default_str();
  auto* seconds = app.add_option("--seconds", cfg.seconds, "measured seconds per mode")->check(CLI::Range(0.5, 3600.0))
      ->capture_default_str();
  app.add_flag("--quick", cfg.quick, "smoke run: 1.5 s and 8 clients unless given");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2; // --help: 0; any bad option: 2
  }
  if (cfg.quick) {
    if (seconds->count() == 0)
      cfg.seconds = 1.5;
    if (clients->count() == 0)
      cfg.clients = 8;
  }

  std::filesystem::path scratch;
  try {
    if (cfg.db.empty()) {
      scratch = std::filesystem::temp_directory_path() / fmt::format("sqlite_search_bench-{}", ::getpid());
      std::filesystem::create_directories(scratch);
      cfg.db = build_catalogue(scratch / "catalog.db", cfg.quick);
    }
    fmt::print("{} clients, {} pool threads, {:.1f} s per mode, {} hardware threads\n\n", cfg.clients, cfg.threads,
               cfg.seconds, std::thread::hardware_concurrency());

    // Baseline: one search alone, no contention, called directly (what a request waits for
    // at best, and how long an inline call blocks the loop).
    std::vector<double> alone;
    {
      catalog::catalog_db db(cfg.db);
      for (int round = 0; round < 3; ++round)
        for (const auto& q : queries) {
          const auto t0 = clock_type::now();
          (void)db.search(q, 10);
          alone.push_back(ms(clock_type::now() - t0).count());
        }
    }
    fmt::print("one search alone (queries: {}): p50 {:.1f} ms, max {:.1f} ms\n\n", fmt::join(queries, ", "),
               percentile(alone, 0.5), *std::max_element(alone.begin(), alone.end()));

    std::vector<mode_result> results;
    results.push_back(run_mode(cfg, false));
    results.push_back(run_mode(cfg, true));

    sqlite_search::bench::print_load_table(results);
    if (!scratch.empty())
      std::filesystem::remove_all(scratch);
    const bool ok = results[0].errors == 0 && results[1].errors == 0 && results[0].searches > 0;
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
  } catch (const std::exception& e) {
    fmt::print(stderr, "sqlite_search_bench: {}\n", e.what());
    if (!scratch.empty())
      std::filesystem::remove_all(scratch);
    return EXIT_FAILURE;
  }
}
