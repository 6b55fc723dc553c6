// sqlite_search_bench - is the server's loop free while searches run? Offloaded vs inline.
//
// The program demonstrates, with numbers, what `co_await search.async(q, n)` buys over calling
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
#include "http.hpp"
#include "http_client.hpp"
#include "search_server.hpp"

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

using clock_type = std::chrono::steady_clock;
using ms = std::chrono::duration<double, std::milli>;

struct config {
  std::filesystem::path db;
  int clients = 16;
  std::size_t threads = 4;
  double seconds = 10;
  bool quick = false;
};

struct mode_result {
  std::string mode;
  std::size_t searches = 0;
  std::size_t errors = 0;
  double seconds = 0;
  std::vector<double> search_ms;
  std::vector<double> health_ms;
  std::size_t reports = 0;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(index, v.size() - 1)];
}

// Prefix queries match a large part of the catalogue, so bm25 ranks thousands of rows: a few
// tens of milliseconds each, the "slow query" of a real search box.
const std::vector<std::string> queries{"lib*", "a*", "s*", "p*", "c*", "d* OR e*", "m*", "t*", "g*", "n*"};

mode_result run_mode(const config& cfg, bool inline_search) {
  mode_result result;
  result.mode = inline_search ? "inline (search(q, n) on the loop)" : "offloaded (co_await search.async(q, n))";

  std::atomic<std::size_t> reports{0};
  auto previous = smartasync::set_diagnostics_handler([&](const smartasync::diagnostic& d) {
    if (d.kind == smartasync::diagnostic_kind::blocking_call_on_loop)
      ++reports;
  });

  catalog::connection_pool connections(cfg.db, cfg.threads);
  smartasync::blocking_pool pool{cfg.threads, 1024};
  // Wrapped here, per mode, so each mode's first inline call is reported.
  auto search = smartasync::smart_async(pool, sqlite_search::catalog_search{&connections},
                                        {.name = inline_search ? "catalog search (inline run)" : "catalog search"});
  asio::io_context io{1};
  sqlite_search::search_server server(io, sqlite_search::make_backend(search),
                                      sqlite_search::server_options{.inline_search = inline_search});
  server.start();
  std::thread loop([&] { io.run(); });

  std::mutex mutex;
  std::atomic<std::size_t> errors{0};
  const auto start = clock_type::now();
  const auto deadline = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(cfg.seconds));

  std::vector<std::thread> clients;
  for (int c = 0; c < cfg.clients; ++c)
    clients.emplace_back([&, c] {
      std::vector<double> mine;
      try {
        sqlite_search::testing::http_client client(server.port(), 60);
        for (std::size_t i = static_cast<std::size_t>(c); clock_type::now() < deadline; ++i) {
          const auto t0 = clock_type::now();
          auto r = client.get("/search?q=" + sqlite_search::http::percent_encode(queries[i % queries.size()]) +
                              "&limit=10");
          if (r.status != 200)
            ++errors;
          else
            mine.push_back(ms(clock_type::now() - t0).count());
        }
      } catch (const std::exception&) {
        ++errors;
      }
      std::lock_guard lock(mutex);
      result.search_ms.insert(result.search_ms.end(), mine.begin(), mine.end());
    });

  // The prober: one /health every 10 ms on its own connection, as a load balancer would.
  std::thread prober([&] {
    try {
      sqlite_search::testing::http_client client(server.port(), 60);
      while (clock_type::now() < deadline) {
        const auto t0 = clock_type::now();
        if (client.get("/health").status != 200)
          ++errors;
        result.health_ms.push_back(ms(clock_type::now() - t0).count());
        std::this_thread::sleep_until(t0 + std::chrono::milliseconds(10));
      }
    } catch (const std::exception&) {
      ++errors;
    }
  });

  for (auto& t : clients)
    t.join();
  prober.join();
  result.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  server.stop();
  loop.join();
  smartasync::set_diagnostics_handler(previous);

  result.searches = result.search_ms.size();
  result.errors = errors;
  result.reports = reports;
  return result;
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

    fmt::print("| mode | searches/s | search p50 | search p99 | /health probes | /health p50 | /health p99 | /health max "
               "| errors | reports |\n");
    fmt::print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& r : results) {
      const auto max = r.health_ms.empty() ? 0.0 : *std::max_element(r.health_ms.begin(), r.health_ms.end());
      fmt::print("| {} | {:.1f} | {:.1f} ms | {:.1f} ms | {} | {:.2f} ms | {:.2f} ms | {:.1f} ms | {} | {} |\n", r.mode,
                 static_cast<double>(r.searches) / r.seconds, percentile(r.search_ms, 0.50),
                 percentile(r.search_ms, 0.99), r.health_ms.size(), percentile(r.health_ms, 0.50),
                 percentile(r.health_ms, 0.99), max, r.errors, r.reports);
    }
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
